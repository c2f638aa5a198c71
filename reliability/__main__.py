"""`make reliability`: the fault-injection and adversarial suite over the whole workflow.

    python -m reliability [--seed N] [--trials N] [--only crashes,io,...] [--jobs 2] [--keep]

Prints each scenario's failures as they happen, then one table: scenario, trials, faults
injected, outcomes, instances lost, instances duplicated, leaks found. Exits 1 when any of the
last three is not zero or any trial failed a check, so CI fails. The seed is printed: the same
seed replays the same trials (the hypothesis scenarios derive their seed from it too).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reliability.harness import Row, RunContext, table, verdict

SCENARIOS = ("crashes", "io", "damaged", "hostile", "leaks", "trust", "statemachine")


def _log(text: str) -> None:
    print(text, flush=True)


def _scenarios(ctx: RunContext, only: list[str]) -> list[Callable[[], list[Row]]]:
    import importlib

    from reliability.rigs import build_import_rig, build_pull_rig

    def module(name: str) -> Any:
        return importlib.import_module(f"reliability.{name}")

    rigs: dict[str, Any] = {}

    def pull_rig() -> Any:
        if "pull" not in rigs:
            rigs["pull"] = build_pull_rig(ctx.workdir / "rig-pull")
        return rigs["pull"]

    def import_rig() -> Any:
        if "import" not in rigs:
            rigs["import"] = build_import_rig(ctx.workdir / "rig-import")
        return rigs["import"]

    table_of: dict[str, Callable[[], list[Row]]] = {
        "crashes": lambda: [
            module("crashes").run_pull(ctx, pull_rig()),
            module("crashes").run_import(ctx, import_rig()),
        ],
        "io": lambda: [
            module("iofaults").run_pull(ctx, pull_rig()),
            module("iofaults").run_import(ctx, import_rig()),
            module("iofaults").run_encrypt_flush(ctx),
        ],
        "damaged": lambda: [module("damaged").run(ctx)],
        "hostile": lambda: [module("hostile").run(ctx)],
        "leaks": lambda: [module("leaks").run(ctx)],
        "trust": lambda: [module("trust").run(ctx)],
        "statemachine": lambda: [module("statemachine").run(ctx)],
    }
    return [table_of[name] for name in SCENARIOS if name in only]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reliability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, help="replay a run (default: a new random seed)")
    parser.add_argument(
        "--trials", type=int, default=100, help="trials per crash subject (default 100)"
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=None,
        help="hypothesis examples per property scenario (default: scaled from --trials)",
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma list of scenarios")
    parser.add_argument(
        "--jobs",
        type=int,
        default=max(2, os.cpu_count() or 2),
        help="trials run at once (default: the number of CPUs, at least 2)",
    )
    parser.add_argument("--workdir", type=Path, help="where trials work (default: a temp dir)")
    parser.add_argument(
        "--match", default="", help="run only the trials whose name contains this text"
    )
    parser.add_argument("--keep", action="store_true", help="keep the folders of failed trials")
    args = parser.parse_args(argv)
    # pydicom warns about the odd files the harness itself makes and reads: noise here.
    warnings.simplefilter("ignore", UserWarning)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := set(only) - set(SCENARIOS):
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    workdir = Path(tempfile.mkdtemp(prefix="reliability-", dir=args.workdir))
    examples = args.examples if args.examples is not None else max(10, args.trials)
    ctx = RunContext(seed, args.trials, workdir, args.jobs, args.keep, _log, examples, args.match)
    _log(f"reliability suite: seed {seed} (replay: python -m reliability --seed {seed} "
         f"--trials {args.trials} --only {','.join(only)}), work in {workdir}")  # fmt: skip
    started = time.monotonic()
    rows: list[Row] = []
    try:
        for scenario in _scenarios(ctx, only):
            for row in scenario():
                _log(f"{row.scenario}: {row.trials} trials, {row.tally()} ({row.seconds:.0f} s)")
                rows.append(row)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    failures = [f for row in rows for f in row.failures]
    if failures:
        _log(f"\n{len(failures)} failed trial check(s):")
        for failure in failures[:50]:
            _log(f"  - {failure[:1500]}")
    _log("")
    _log(table(rows))
    status = verdict(rows)
    _log(
        f"\n{'PASS' if status == 0 else 'FAIL'}: seed {seed}, "
        f"{time.monotonic() - started:.0f} s in all"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
