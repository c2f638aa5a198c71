"""Rich rendering of the core's progress reports: count, bytes, byte rate and time left."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _BytesColumn(ProgressColumn):
    """Bytes done and the byte rate of the phase (rich's own speed column counts units)."""

    def render(self, task: Task) -> Text:
        done = int(task.fields.get("nbytes", 0))
        if not done:
            return Text("")
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = f" {decimal(int(done / elapsed))}/s" if elapsed else ""
        return Text(f"{decimal(done)}{rate}", style="progress.data.speed")


_REFRESH = 0.1  # seconds between updates pushed to rich (an update costs microseconds: a walk
# of 100,000 files would spend more time drawing its bar than deciding)


class RichProgress:
    """A context manager implementing common.progress.Progress with one bar per phase.

    Disabled (``--json``), it does nothing at all; enabled, advances are added up and handed
    to rich at most every 0.1 s, and at the end of each phase.
    """

    def __init__(self, console: Console | None = None, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._units = self._nbytes = 0
        self._next_push = 0.0
        self._progress = Progress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            _BytesColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish_phase()
        self._progress.stop()

    def _finish_phase(self) -> None:
        if self._task is not None:
            self._push()
            task = self._progress.tasks[-1]
            self._progress.update(self._task, total=task.completed)

    def _push(self) -> None:
        if self._task is None or not (self._units or self._nbytes):
            return
        task = self._progress.tasks[-1]
        nbytes = int(task.fields.get("nbytes", 0)) + self._nbytes
        self._progress.update(self._task, advance=self._units, nbytes=nbytes)
        self._units = self._nbytes = 0
        self._next_push = time.monotonic() + _REFRESH

    def phase(self, name: str, total: int | None = None, *, unit: str = "files") -> None:
        if not self._enabled:
            return
        self._finish_phase()
        self._task = self._progress.add_task(name, total=total, nbytes=0)
        self._next_push = 0.0

    def advance(self, units: int = 1, *, nbytes: int = 0) -> None:
        if self._task is None:
            return
        self._units += units
        self._nbytes += nbytes
        if time.monotonic() >= self._next_push:
            self._push()
