"""Rich rendering of the core's progress reports (rate and time left)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class RichProgress:
    """A context manager implementing common.progress.Progress with one bar per phase."""

    def __init__(self, console: Console | None = None, *, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
            disable=not enabled,
        )
        self._task: TaskID | None = None
        self._bytes = 0

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def phase(self, name: str, total: int | None = None, *, unit: str = "files") -> None:
        if self._task is not None:
            self._progress.update(self._task, total=self._progress.tasks[-1].completed)
        self._task = self._progress.add_task(name, total=total)

    def advance(self, units: int = 1, *, nbytes: int = 0) -> None:
        if self._task is not None:
            self._progress.advance(self._task, units)
