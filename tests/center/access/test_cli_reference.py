"""The reference page of the access commands is current and complete."""

from __future__ import annotations

from typer.main import get_command

from center.cli.app import app
from tests.center.access.cli_reference import COMMANDS, PAGE, render


def test_cli_reference_page_is_current() -> None:
    """docs/reference/cli/center-access.md is what `--help` prints today."""
    assert PAGE.read_text() == render(), "run: python -m tests.center.access.cli_reference"


def test_every_access_command_is_on_the_page() -> None:
    """Each subcommand of the operator and request groups has its section."""
    root = get_command(app)
    for group in ("operator", "request"):
        for name in root.commands[group].commands:  # type: ignore[attr-defined]
            assert [group, name] in COMMANDS
