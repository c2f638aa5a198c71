"""The cyclic garbage collector is paused for planning and comes back as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

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
