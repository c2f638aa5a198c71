"""Meta-tests: every error class is distinct and documented; every command has help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command

from center.cli.app import app as center_app
from common import errors
from courier.cli.app import app as courier_app

ROOT = Path(__file__).resolve().parent.parent


def _error_classes() -> list[type[errors.ArchiveError]]:
    return [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.ArchiveError)
    ]


def test_every_error_class_is_listed() -> None:
    """ALL_ERRORS names every error class of the module."""
    assert set(_error_classes()) == set(errors.ALL_ERRORS)


def test_error_references_are_unique() -> None:
    """Each error class has its own stable kebab-case reference."""
    refs = [c.ref for c in errors.ALL_ERRORS]
    assert len(refs) == len(set(refs))
    assert all(r == r.lower() and " " not in r for r in refs)


def test_error_exit_codes_are_unique() -> None:
    """Each error class has its own exit code, none of them 0 or the internal-error code."""
    codes = [c.exit_code for c in errors.ALL_ERRORS]
    assert len(codes) == len(set(codes))
    assert 0 not in codes and 70 not in codes


def test_every_error_is_documented() -> None:
    """docs/reference/errors.md names every error reference."""
    text = (ROOT / "docs" / "reference" / "errors.md").read_text()
    missing = [c.ref for c in errors.ALL_ERRORS if f"`{c.ref}`" not in text]
    assert missing == []


def _commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
    """Every command below *group*. typer may ship its own copy of click, so this looks at
    the objects' shape (a ``commands`` mapping, ``params`` with ``opts``), not their class."""
    found = [(prefix, group)]
    for name, sub in (getattr(group, "commands", None) or {}).items():
        found += _commands(sub, f"{prefix} {name}")
    return found


@pytest.mark.parametrize(
    ("app", "minimum"), [(courier_app, 15), (center_app, 30)], ids=["courier", "center"]
)
def test_every_command_and_option_has_help(app: typer.Typer, minimum: int) -> None:
    """Every command and every option carries help text."""
    root = get_command(app)
    commands = _commands(root, root.name or "")
    assert len(commands) >= minimum  # the walk really reaches the subcommands
    lacking = []
    for path, command in commands:
        if not (command.help or "").strip():
            lacking.append(path)
        for param in command.params:
            if param.param_type_name == "option" and not (param.help or "").strip():
                lacking.append(f"{path} {param.opts[0]}")
    assert lacking == []


@pytest.mark.parametrize("entry", ["courier", "center"])
def test_entry_point_runs_as_a_subprocess(entry: str) -> None:
    """The installed console script starts and prints its help."""
    script = Path(sys.executable).parent / entry
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
