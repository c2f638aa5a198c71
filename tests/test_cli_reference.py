"""The CLI reference pages are current and cover every command (STYLE.md points 19 and 23)."""

from __future__ import annotations

import pytest

from tests.cli_reference import PAGES, Page, command_paths, render


@pytest.mark.parametrize("page", PAGES, ids=[p.prog for p in PAGES])
def test_cli_reference_page_is_current(page: Page) -> None:
    """The page is exactly what `--help` prints today."""
    assert page.path.read_text() == render(page), "run: make docs"


@pytest.mark.parametrize("page", PAGES, ids=[p.prog for p in PAGES])
def test_cli_reference_has_a_section_per_command(page: Page) -> None:
    """Every command at every depth has its own section."""
    text = page.path.read_text()
    paths = command_paths(page)
    assert len(paths) > 10
    missing = [p for p in paths if f"## `{' '.join([page.prog, *p])}`" not in text]
    assert missing == []
