"""Command listings in `--help` show each command's summary on one line, as written."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from center.cli.app import app as center_app
from common.clihelp import summary
from courier.cli.app import app as courier_app

WIDE = {"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb", "COURIER_HOME": "/nonexistent"}


def _listings(app: typer.Typer, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(group path, expected summary) for every command and group of *app*."""
    found = []
    for command in app.registered_commands:
        doc = command.help or (command.callback.__doc__ if command.callback else None)
        if text := summary(doc):
            found.append((path, text))
    for group in app.registered_groups:
        sub = group.typer_instance
        assert sub is not None
        found += _listings(sub, (*path, str(group.name)))
    return found


@pytest.mark.parametrize(("app", "prog"), [(courier_app, "courier"), (center_app, "center")])
def test_every_command_summary_is_listed_on_one_line(app: typer.Typer, prog: str) -> None:
    """A docstring wrapped over several lines is listed joined, not broken mid-sentence."""
    listings = _listings(app)
    assert len(listings) > 10
    for path, text in listings:
        shown = CliRunner().invoke(app, [*path, "--help"], env=WIDE, prog_name=prog).output
        lines = [" ".join(line.strip(" │").split()) for line in shown.splitlines()]
        assert any(text in line for line in lines), (path, text)


def test_summary_joins_the_first_paragraph_only() -> None:
    """The first paragraph, its lines joined; what follows a blank line is left out."""
    assert (
        summary("Show what a pull\n    would take.\n\n    More detail.")
        == "Show what a pull would take."
    )
    assert summary(None) is None and summary("") is None
