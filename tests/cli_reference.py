"""The CLI reference pages (docs/reference/cli/*.md), generated from every command's `--help`.

Run ``make docs`` (``python -m tests.cli_reference``) after changing a command;
tests/test_cli_reference.py fails while a page is out of date. Commands are discovered by walking
each app, so a new command appears without editing this file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.main import get_command
from typer.testing import CliRunner

from center.cli.app import app as center_app
from courier.cli.app import app as courier_app

ROOT = Path(__file__).resolve().parents[1]
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "COURIER_HOME": "/nonexistent"}


@dataclass(frozen=True)
class Page:
    prog: str
    app: typer.Typer
    path: Path
    header: str


PAGES = [
    Page(
        "courier",
        courier_app,
        ROOT / "docs" / "reference" / "cli" / "courier.md",
        """# `courier` command reference

Generated from each command's `--help` by `make docs`; a test fails when this page is out of
date. How-to guides: [facilities and selection rules](../../how-to/courier-facilities.md),
[a clinic visit](../../how-to/courier-visit.md), [pulling from a clinic's
PACS](../../how-to/courier-pacs.md), [checking drives, receipts and the
log](../../how-to/courier-checks.md). Exit codes: [errors](../errors.md).
""",
    ),
    Page(
        "center",
        center_app,
        ROOT / "docs" / "reference" / "cli" / "center.md",
        """# `center` command reference

Generated from each command's `--help` by `make docs`; a test fails when this page is out of
date. Every command that reads or changes patient data runs as the operator named by
`--operator` / `CENTER_OPERATOR`, logged in with the passphrase from
`CENTER_OPERATOR_PASSPHRASE`, `CENTER_OPERATOR_PASSPHRASE_FILE` or a prompt, on the archive
given by `--archive` / `CENTER_ARCHIVE` (options of `center` itself, given before the command
name). Explanations: [import](../center-import.md), [operators and roles](../operators.md),
[search, export and output requests](../search-and-export.md),
[retention](../retention.md). Exit codes: [errors](../errors.md).
""",
    ),
]


def _paths(command: Any, prefix: list[str]) -> list[list[str]]:
    """Every command path; typer vendors its own click, so groups are found by duck typing."""
    found = [prefix]
    children = getattr(command, "commands", None) or {}
    for name in sorted(children):
        found += _paths(children[name], [*prefix, name])
    return found


def command_paths(page: Page) -> list[list[str]]:
    return _paths(get_command(page.app), [])


def render(page: Page) -> str:
    parts = [page.header]
    for path in command_paths(page):
        result = CliRunner().invoke(page.app, [*path, "--help"], env=ENV, prog_name=page.prog)
        if result.exit_code != 0:
            raise RuntimeError(f"{page.prog} {' '.join(path)} --help failed: {result.output}")
        title = " ".join([page.prog, *path])
        lines = [line.rstrip() for line in result.output.strip("\n").splitlines()]
        parts.append(f"\n## `{title}`\n\n```text\n" + "\n".join(lines) + "\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    for page in PAGES:
        page.path.parent.mkdir(parents=True, exist_ok=True)
        page.path.write_text(render(page))
        sys.stdout.write(f"wrote {page.path.relative_to(ROOT)}\n")
