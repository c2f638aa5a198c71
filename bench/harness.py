"""Measurement helpers: run a command several times, take the median, read its peak RSS.

Each measurement runs in a child process waited for with ``os.wait4``, which returns that
child's own resource usage (peak RSS included), so figures never mix runs. Baselines run on the
same files in the same session; ratios are computed against them, never against constants.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    seconds: float
    peak_rss_kib: int


@dataclass
class Measurement:
    name: str
    runs: list[Run] = field(default_factory=list)
    units: float = 0.0  # work per run: bytes, files or instances
    unit_name: str = "bytes"

    @property
    def median_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rate(self) -> float:
        """Units per second at the median time."""
        return self.units / self.median_seconds if self.runs else 0.0

    @property
    def peak_rss_mib(self) -> float:
        return max(r.peak_rss_kib for r in self.runs) / 1024 if self.runs else 0.0


def run_timed(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
) -> Run:
    """Run *argv* once; its wall time and peak RSS. Raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin else None,
    )
    if stdin:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {stderr[-2000:]}")
    return Run(elapsed, int(usage.ru_maxrss))


def measure(
    name: str,
    repeat: int,
    units: float,
    unit_name: str,
    prepare: Callable[[], None],
    argv: Callable[[], Sequence[str]],
    env: dict[str, str] | None = None,
) -> Measurement:
    """Repeat (prepare, run) *repeat* times; prepare is not timed."""
    result = Measurement(name, units=units, unit_name=unit_name)
    for _ in range(repeat):
        prepare()
        drop_caches()
        result.runs.append(run_timed(argv(), env=env))
    return result


def drop_caches() -> None:
    """Flush dirty pages and, when allowed (root), drop the page cache between runs."""
    os.sync()
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def tree_bytes(root: Path) -> tuple[int, int]:
    """(total bytes, file count) of regular files below *root*."""
    total = count = 0
    for path in root.rglob("*"):
        if path.is_file():
            total += path.stat().st_size
            count += 1
    return total, count


def fmt_rate(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 1e6:,.1f} MB/s"
    return f"{value:,.0f} {unit}/s"
