"""The courier CLI reference (docs/reference/cli/courier.md), generated from `--help`.

Run ``python -m tests.courier.cli_reference`` to rewrite the page after changing a command;
tests/courier/test_cli_reference.py fails while the page is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from typer.main import get_command
from typer.testing import CliRunner

from courier.cli.app import app

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli" / "courier.md"
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "COURIER_HOME": "/nonexistent"}
HEADER = """# `courier` command reference

Generated from each command's `--help` by `python -m tests.courier.cli_reference`; a test
fails when this page is out of date. How-to guides: [facilities and selection
rules](../../how-to/courier-facilities.md), [a clinic visit](../../how-to/courier-visit.md),
[pulling from a clinic's PACS](../../how-to/courier-pacs.md), [checking drives, receipts and
the log](../../how-to/courier-checks.md). Exit codes: [errors](../errors.md).
"""


def _paths(command: Any, prefix: list[str]) -> list[list[str]]:
    """Every command path; typer vendors its own click, so groups are found by duck typing."""
    found = [prefix]
    children = getattr(command, "commands", None) or {}
    for name in sorted(children):
        found += _paths(children[name], [*prefix, name])
    return found


def command_paths() -> list[list[str]]:
    return _paths(get_command(app), [])


def render() -> str:
    parts = [HEADER]
    for path in command_paths():
        result = CliRunner().invoke(app, [*path, "--help"], env=ENV, prog_name="courier")
        if result.exit_code != 0:
            raise RuntimeError(f"courier {' '.join(path)} --help failed: {result.output}")
        title = " ".join(["courier", *path])
        lines = [line.rstrip() for line in result.output.strip("\n").splitlines()]
        parts.append(f"\n## `{title}`\n\n```text\n" + "\n".join(lines) + "\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(render())
    sys.stdout.write(f"wrote {PAGE}\n")
