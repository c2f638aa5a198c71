"""Trials, their tally, the final table and the exit status of `make reliability`.

A scenario runs trials (in parallel, each in its own temporary folder) and returns one
:class:`Row`. A trial reports its outcome (a short word: "ok", "clean-error", "refused" ...),
how many faults it injected, the instances it found lost or duplicated, the leaks it found
and any failed check. The run fails when any row has a lost or duplicated instance, a leak or
a failed check.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass
class TrialResult:
    outcome: str
    faults: int = 0
    lost: int = 0
    duplicated: int = 0
    leaks: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)


@dataclass
class Row:
    """One scenario's line of the final table."""

    scenario: str
    trials: int = 0
    faults: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    leaks: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""
    # The columns among lost, duplicated and leaks that this scenario's trials measure; the
    # table shows "-" for the others (unless a trial counted one anyway).
    measures: frozenset[str] = frozenset({"lost", "duplicated", "leaks"})

    def cell(self, column: str) -> str:
        value: int = getattr(self, column)
        return str(value) if value or column in self.measures else "-"

    def add(self, name: str, result: TrialResult) -> None:
        self.trials += 1
        self.faults += result.faults
        self.outcomes[result.outcome if not result.failures else "FAILED"] += 1
        self.lost += result.lost
        self.duplicated += result.duplicated
        self.leaks += result.leaks
        self.failures += [f"{name}: {message}" for message in result.failures]

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.leaks or self.failures) and self.trials > 0

    def tally(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))


@dataclass(frozen=True)
class RunContext:
    """What every scenario gets: the seed, how many trials, where to work, how wide to run."""

    seed: int
    trials: int
    workdir: Path
    jobs: int
    keep: bool
    log: Callable[[str], None]
    examples: int = 50  # hypothesis examples per property scenario
    match: str = ""  # run only the trials whose name contains this (to replay one)

    def rng(self, *parts: object) -> random.Random:
        """A generator determined by the run's seed and *parts* (a trial replays from them)."""
        return random.Random("|".join(str(p) for p in (self.seed, *parts)))

    @contextmanager
    def folder(self, name: str) -> Iterator[Path]:
        """A fresh folder for one trial, removed afterwards (kept on failure with --keep)."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))
        failed = True
        try:
            yield path
            failed = False
        finally:
            if not (failed and self.keep):
                shutil.rmtree(path, ignore_errors=True)

    def run_trials(
        self,
        row: Row,
        trials: Iterable[tuple[str, Callable[[], TrialResult]]],
        *,
        jobs: int | None = None,
    ) -> None:
        """Run each (name, trial) with *jobs* at a time; a trial that raises is a failure."""
        lock = threading.Lock()
        done = Counter[str]()

        def one(item: tuple[str, Callable[[], TrialResult]]) -> None:
            name, trial = item
            try:
                result = trial()
            except Exception:  # noqa: BLE001 - the harness reports, it does not crash
                result = TrialResult("harness-error", failures=[traceback.format_exc(limit=6)])
            with lock:
                row.add(name, result)
                done["n"] += 1
                if result.failures:
                    self.log(f"  FAILED {name}: {result.failures[0][:400]}")

        selected = (item for item in trials if self.match in item[0])
        with ThreadPoolExecutor(max_workers=jobs or self.jobs) as pool:
            list(pool.map(one, selected))


def timed(row: Row, started: float) -> Row:
    row.seconds = time.monotonic() - started
    return row


HEADERS = (
    "scenario",
    "trials",
    "faults injected",
    "outcomes",
    "instances lost",
    "instances duplicated",
    "leaks found",
)


def table(rows: list[Row]) -> str:
    """The final table, as plain text (also pasted into docs/reliability.md)."""
    cells = [
        [
            r.scenario,
            str(r.trials),
            str(r.faults),
            r.tally() + (f" ({r.note})" if r.note else ""),
            r.cell("lost"),
            r.cell("duplicated"),
            r.cell("leaks"),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]

    def line(values: Iterable[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(HEADERS), rule, *(line(c) for c in cells)])


def verdict(rows: list[Row]) -> int:
    """0 when every row is clean, 1 otherwise."""
    return 0 if rows and all(r.ok for r in rows) else 1
