"""The progress bar adds up advances between its (throttled) updates and shows them all."""

from __future__ import annotations

import io

from rich.console import Console

from common.richprogress import RichProgress


def test_every_advance_is_counted_by_the_end_of_the_phase() -> None:
    """Advances made faster than the bar refreshes are all in the phase's final count."""
    console = Console(file=io.StringIO(), force_terminal=False)
    with RichProgress(console) as progress:
        progress.phase("copy", 1000)
        for _ in range(1000):
            progress.advance(1, nbytes=3)
        progress.phase("seal", None)
        task = progress._progress.tasks[0]
        assert (task.completed, task.fields["nbytes"]) == (1000, 3000)


def test_a_disabled_bar_records_nothing() -> None:
    """With output disabled (--json) the bar keeps no state at all."""
    with RichProgress(Console(file=io.StringIO()), enabled=False) as progress:
        progress.phase("scan", None)
        progress.advance(5, nbytes=10)
        assert progress._progress.tasks == []
