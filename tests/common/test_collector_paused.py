"""The cyclic garbage collector is paused for planning and comes back as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from common import heap
from common.heap import collector_paused


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_on_again_after(collector_on: None) -> None:
    """Inside the block the collector does not run; after it, even after an error, it does."""
    with pytest.raises(KeyError), collector_paused():
        assert not gc.isenabled()
        raise KeyError("boom")
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_caller_stays_off(collector_on: None) -> None:
    """The block does not turn on a collector that was off before it."""
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_what_a_scan_planned_is_frozen_after_the_pause(collector_on: None) -> None:
    """Within frozen_after_pauses (`courier scan`), what the pause made is out of the
    collector's generations once it ends; outside it, nothing is frozen."""
    gc.unfreeze()  # what a scan run earlier in this process froze is not this test's
    with collector_paused():
        planned = [[i] for i in range(1000)]
    assert gc.get_freeze_count() == 0 and any(planned is o for o in gc.get_objects())
    try:
        with heap.frozen_after_pauses(), collector_paused():
            planned = [[i] for i in range(1000)]
        assert gc.get_freeze_count() >= len(planned)
        assert not any(planned is o for o in gc.get_objects())
    finally:
        gc.unfreeze()
