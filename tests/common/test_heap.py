"""malloc reuses one heap for object-sized buffers: no page fault per buffer, no creeping memory.

Each check runs in a fresh interpreter (malloc settings are per process and the test process's
own heap would blur the counts) that churns object-sized buffers in several threads, as the
copy and import pipelines do, and reports its minor page faults and resident set. Counts, not
timings: a buffer mapped afresh costs 128 faults per 512 KiB whatever the machine's load.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

_CHURN = """
import json, resource, sys, threading
from common.heap import reuse_one_heap_for_big_buffers

if sys.argv[1] == "on":
    configured = reuse_one_heap_for_big_buffers()
else:  # the setting this replaced: the mmap threshold fixed at glibc's starting 128 KiB
    import ctypes, ctypes.util
    configured = ctypes.CDLL(ctypes.util.find_library("c")).mallopt(-3, 128 << 10) == 1
SIZE, ROUNDS, THREADS = 512 << 10, 400, 4

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

def churn():
    held = []
    for i in range(ROUNDS):
        buffer = bytearray(SIZE)          # zero-filled: every page is touched
        buffer[:: 4096] = b"x" * (SIZE // 4096)
        held.append(bytes(buffer))        # a second buffer, as read() and encrypt() make
        if len(held) > 4:                 # a few in flight, the rest freed
            held.pop(0)

def run():
    threads = [threading.Thread(target=churn) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

run()                                     # warm up: the heap reaches its working size
faults_before, rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, rss_kib()
for _ in range(3):
    run()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
print(json.dumps({"configured": configured, "faults": faults,
                  "growth_kib": rss_kib() - rss_before,
                  "buffers": 3 * THREADS * ROUNDS * 2}))
"""


def _churn(mode: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def test_object_sized_buffers_are_reused_not_mapped_afresh() -> None:
    """9,600 buffers of 512 KiB after warm-up: a handful of faults, not 128 per buffer."""
    result = _churn("on")
    assert result["configured"] is True
    assert result["faults"] < result["buffers"], result  # under one fault per buffer


def test_the_check_fails_for_buffers_mapped_afresh() -> None:
    """The control: with the mmap threshold fixed at 128 KiB the same churn faults every page."""
    mapped = _churn("mapped")
    assert mapped["configured"] is True
    assert mapped["faults"] > 100 * mapped["buffers"], mapped


def test_memory_does_not_creep_with_more_buffers() -> None:
    """Three more rounds of the churn leave the resident set where the warm-up left it."""
    result = _churn("on")
    assert result["growth_kib"] < 16 << 10, result  # under 16 MiB: noise, not 9,600 buffers
