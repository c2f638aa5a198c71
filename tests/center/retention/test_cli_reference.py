"""The reference page of the retention commands is current and complete."""

from __future__ import annotations

from typer.main import get_command

from center.cli.app import app
from tests.center.retention.cli_reference import GROUPS, PAGE, render


def test_cli_reference_page_is_current() -> None:
    """docs/reference/cli/center-retention.md is what `--help` prints today."""
    assert PAGE.read_text() == render(), "run: python -m tests.center.retention.cli_reference"


def test_every_retention_command_is_on_the_page() -> None:
    """Each subcommand of the retention, facility, hold and expiry groups has its section."""
    root = get_command(app)
    for group, listed in GROUPS.items():
        assert sorted(root.commands[group].commands) == sorted(listed)  # type: ignore[attr-defined]
