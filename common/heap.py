"""Big buffers out of the malloc heap, so a long pull or import does not grow its memory.

The copy and import pipelines allocate and free thousands of buffers of about an object's size
(hundreds of KiB) in several threads. glibc's malloc serves allocations above its mmap
threshold with mmap and gives them back on free; but after the first such free it raises that
threshold (up to 32 MiB), after which the same buffers come from the per-thread heaps, which
keep freed memory: the resident set then creeps up with the number of objects (measured: an
import of 8,200 objects at 187 MB instead of 137 MB). Setting the threshold explicitly turns
that adjustment off (mallopt(3)). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_MMAP_THRESHOLD = -3
_THRESHOLD = 128 << 10  # glibc's own starting value, kept fixed


@functools.cache
def keep_big_buffers_out_of_the_heap() -> bool:
    """Fix malloc's mmap threshold (once per process); True when it could be done."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
