"""malloc's mmap threshold is fixed where glibc allows it (big buffers leave the heap)."""

from __future__ import annotations

import platform

import pytest

from common.heap import keep_big_buffers_out_of_the_heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_threshold_is_set_on_glibc() -> None:
    """On glibc the call succeeds (and a second call is harmless)."""
    assert keep_big_buffers_out_of_the_heap() is True
    assert keep_big_buffers_out_of_the_heap() is True
