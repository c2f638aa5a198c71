"""One malloc heap, reused: a long pull or import neither grows its memory nor faults it in.

The copy and import pipelines allocate and free thousands of buffers of about an object's size
(hundreds of KiB) in a dozen threads. Left to itself, glibc's malloc does two costly things with
them:

* it serves them with mmap and gives them back with munmap until the first such free, then
  raises its mmap threshold, after which each thread's own heap (arena) keeps what it freed:
  the resident set then creeps up with the number of objects (measured: an import of 8,200
  objects at 187 MB instead of 137 MB);
* fixing the threshold at its starting 128 KiB instead (what this module did first) stops the
  creep but maps every buffer afresh: each 512 KiB object was then paid for with about 380
  page faults, zero-filled by the kernel (a 1.3 GB pull: 1.29 million faults, 4.7 s of system
  time of 10 s of CPU).

So: ONE arena for every thread (``M_ARENA_MAX``), so a buffer freed by the writer thread is
reused by a reader thread; buffers up to :data:`_MMAP_THRESHOLD` from that heap, not mmap; and
free memory at the top of the heap kept up to :data:`_TRIM_THRESHOLD` (more than the pipelines'
bounded buffers in flight) before it is given back. Setting these explicitly also turns glibc's
own adjustment off (mallopt(3)). Measured with ``python -m bench.run --only memory``, see
docs/performance.md. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Iterator

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

_ARENAS = 1
_MMAP_THRESHOLD = 4 << 20  # above a usual instance; bigger buffers are mapped and unmapped
_TRIM_THRESHOLD = 32 << 20  # above the 16 MiB (pull) and 24 MiB (import) held in flight


@functools.cache
def reuse_one_heap_for_big_buffers() -> bool:
    """Set malloc up for the pipelines (once per process); True when it could be done."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return all(
        mallopt(option, value)
        for option, value in (
            (_M_ARENA_MAX, _ARENAS),
            (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
        )
    )


class _Pauses:
    freeze = False  # set within frozen_after_pauses()


@contextlib.contextmanager
def frozen_after_pauses() -> Iterator[None]:
    """Within this block, :func:`collector_paused` freezes (``gc.freeze``) what exists when a
    pause ends well.

    For a command that ends its process once its plan is made (`courier scan`): the collector
    then never traverses the plan again, neither right after the pause (the first collection
    would go through every object made in it) nor at the interpreter's exit (25 ms of a 0.37 s
    re-scan of 20,000 files). A cycle frozen is only freed with the process (the pydicom path
    of header reading leaves a few small ones a file), so a command that goes on working after
    planning (a pull) does not use this.
    """
    before = _Pauses.freeze
    _Pauses.freeze = True
    try:
        yield
    finally:
        _Pauses.freeze = before


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a burst of allocations that makes no
    reference cycles, then back as it was.

    Planning a visit allocates some ten objects per terminal file (the walk's tuples, the
    recorded decisions, headers, candidates) and keeps many of them: the collector, run every
    700 allocations, traverses the growing plan and everything the imports made, again and
    again (30 ms of the 350 ms a re-scan of 20,000 files spends planning, measured with
    gc.callbacks). Only the pydicom path of header reading leaves cycles behind (about two
    small objects a file): they are freed when the collector runs again, at the end, unless
    the pause is within :func:`frozen_after_pauses`.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
        if _Pauses.freeze:
            gc.freeze()
    finally:
        gc.enable()
