"""Measurement helpers: run a command several times, take the median, read its peak RSS.

Each measurement runs in a child process waited for with ``os.wait4``, which returns that
child's own resource usage (peak RSS included), so figures never mix runs. The children are
forked by a small spawner process (bench/spawner.py), never by this driver: a forked program
inherits its parent's resident-set high-water mark. Baselines run on the
same files in the same session; ratios are computed against them, never against constants.

``ru_maxrss`` of ``wait4`` is the largest single process of the child's tree, not their sum; a
command with worker processes is therefore also sampled (every 250 ms, /proc) for the summed RSS
of its whole process tree (proportional set size, so shared pages count once), reported as
``tree RSS``.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Run:
    seconds: float
    peak_rss_kib: int
    tree_rss_kib: int = 0


@dataclass
class Measurement:
    name: str
    runs: list[Run] = field(default_factory=list)
    units: float = 0.0  # work per run: bytes, files or instances
    unit_name: str = "bytes"
    data_bytes: float = 0.0  # size of the data set a run works on (memory tables)

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

    @property
    def tree_rss_mib(self) -> float:
        """Peak of the summed RSS of the process tree (sampled), over the runs."""
        if not self.runs:
            return 0.0
        return max(max(r.tree_rss_kib, r.peak_rss_kib) for r in self.runs) / 1024


def _tree_rss_kib(pid: int) -> int:
    """Summed proportional set size (PSS: shared pages split between their users, so a forked
    worker's pages are not counted twice) of *pid* and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/<pid>/stat): tells a reused PID apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


TREE_SAMPLE_SECONDS = 0.25


class _TreeSampler(threading.Thread):
    """Samples the summed PSS of a process tree until stopped (or until the process is gone:
    on a busy machine its PID may be reused within milliseconds).

    Every :data:`TREE_SAMPLE_SECONDS`: each sample reads /proc files of every thread of the
    measured process, which then waits on its memory map's lock; sampled every 20 ms, a
    1.29 GB import of twenty threads took 4.27 s instead of 3.70 s (Orthanc's load 5.40 s
    instead of 5.31 s). The command's own peak RSS (``wait4``) is exact whatever the rate."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        born = _start_time(self.pid)
        while not self._stop_event.wait(TREE_SAMPLE_SECONDS):
            sample = _tree_rss_kib(self.pid)
            if born is None or _start_time(self.pid) != born:  # gone, maybe while sampling
                return
            self.peak = max(self.peak, sample)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


class _Spawner:
    """The long-lived small process that forks every measured command (bench/spawner.py)."""

    _instance: _Spawner | None = None

    def __init__(self) -> None:
        script = Path(__file__).with_name("spawner.py")
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    @classmethod
    def get(cls) -> _Spawner:
        if cls._instance is None or cls._instance.proc.poll() is not None:
            cls._instance = cls()
        return cls._instance

    def ask(self, request: dict[str, object]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark spawner died")
        answer: dict[str, Any] = json.loads(line)
        return answer


def run_timed(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Run:
    """Run *argv* once (through the spawner); its wall time and peak RSS. Raises if it fails.

    Its stderr goes to a temporary file, shown when the command fails.
    """
    spawner = _Spawner.get()
    with tempfile.NamedTemporaryFile() as errors:
        request = {
            "argv": list(argv),
            "env": dict(os.environ if env is None else env),
            "cwd": None if cwd is None else str(cwd),
            "stderr": errors.name,
        }
        started = spawner.ask(request)
        sampler = _TreeSampler(int(started["pid"]))
        sampler.start()
        try:
            done = spawner.read()
        finally:
            tree = sampler.stop()
        if done["status"] != 0:
            stderr = Path(errors.name).read_bytes().decode(errors="replace")
            raise RuntimeError(f"{argv[0]} failed ({done['status']}): {stderr[-2000:]}")
    return Run(float(done["seconds"]), int(done["maxrss_kib"]), tree)


def measure(
    name: str,
    repeat: int,
    units: float,
    unit_name: str,
    prepare: Callable[[], None],
    argv: Callable[[], Sequence[str]],
    env: dict[str, str] | None = None,
    *,
    cold: bool = True,
) -> Measurement:
    """Repeat (prepare, run) *repeat* times; prepare is not timed. Each run starts with the
    page cache dropped, unless *cold* is False (then one untimed run warms it first)."""
    result = Measurement(name, units=units, unit_name=unit_name)
    if not cold:
        prepare()
        run_timed(argv(), env=env)
    for _ in range(repeat):
        prepare()
        if cold:
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
