"""A tiny progress protocol: core functions report, the CLI renders (rich) or ignores."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class Progress(Protocol):
    def phase(self, name: str, total: int | None = None, *, unit: str = "files") -> None:
        """A new phase begins; *total* units are expected (None when unknown)."""

    def advance(self, units: int = 1, *, nbytes: int = 0) -> None:
        """*units* more are done, *nbytes* bytes with them."""


class NoProgress:
    """Progress that shows nothing (tests, --json)."""

    def phase(self, name: str, total: int | None = None, *, unit: str = "files") -> None:
        return None

    def advance(self, units: int = 1, *, nbytes: int = 0) -> None:
        return None


def cli_progress(enabled: bool) -> AbstractContextManager[Progress]:
    """A command's progress display: rich bars, or nothing at all (``--json``).

    rich is imported only when the bars are shown: a scripted command (``--json``) does not
    pay for loading it (docs/performance.md, re-scan).
    """
    if not enabled:
        return nullcontext(NoProgress())
    from common.richprogress import RichProgress

    return RichProgress()
