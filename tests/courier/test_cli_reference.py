"""The courier CLI reference page is current (STYLE.md point 19)."""

from __future__ import annotations

from typer.main import get_command

from courier.cli.app import app
from tests.courier.cli_reference import PAGE, command_paths, render


def test_cli_reference_page_is_current() -> None:
    """docs/reference/cli/courier.md is what `--help` prints today."""
    assert PAGE.read_text() == render(), "run: python -m tests.courier.cli_reference"


def test_cli_reference_covers_every_command() -> None:
    """Every courier command has its section."""
    text = PAGE.read_text()
    for command in (
        "init",
        "facility add",
        "scan",
        "pull",
        "deliver",
        "receipt verify",
        "drives",
        "drive init",
        "log",
        "verify",
    ):
        assert f"## `courier {command}`" in text


def test_every_courier_command_and_option_has_help() -> None:
    """Each courier command, at every depth, and each of its options carries help text."""
    root = get_command(app)
    lacking = []
    for path in command_paths():
        command = root
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        if not (command.help or "").strip():
            lacking.append(" ".join(path))
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option" and not (param.help or "").strip():
                lacking.append(f"{' '.join(path)} {param.opts[0]}")
    assert len(command_paths()) > 12 and lacking == []
