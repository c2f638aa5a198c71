"""Scenario 1, crashes: `courier pull` and `center import` killed at random points, resumed.

Each trial kills the command (SIGKILL from inside, at the Nth write, fsync or rename, N drawn
from the run's seed over the operations an uninterrupted run makes); about a third of the
trials kill the first resume too. A normal run then finishes the job, and the end state is
compared with an uninterrupted run (reliability/endstate.py), and the drive, the courier's
state folder and every command's output are scanned for patient data and secrets.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from reliability.endstate import (
    finish_import,
    finish_pull,
    no_leaks,
    rig_needles,
    sealed_bundles_ok,
)
from reliability.harness import Row, RunContext, TrialResult, timed
from reliability.leakscan import Needles
from reliability.rigs import PARTIAL_EXIT, ImportRig, PullRig, op_summary
from reliability.world import Case, Done, Fault

SECOND_KILL = 0.35  # share of trials whose first resume is killed too


def _kills(
    ctx: RunContext, label: str, index: int, total: int, case: Case, app: str, args: list[str],
    result: TrialResult, allowed: tuple[int, ...], runs: list[Done],
) -> bool:  # fmt: skip
    """Kill *app* once or twice at random points; False when a child ended unexpectedly.
    Only kills that landed count as faults injected (a second kill point beyond what the
    resumed run still had to do does not land); every run is appended to *runs*."""
    rng = ctx.rng(label, index)
    rounds = 2 if rng.random() < SECOND_KILL else 1
    landed = 0
    for _ in range(rounds):
        fault = Fault(rng.randint(1, total), "kill")
        done = case.run(app, *args, fault=fault)
        runs.append(done)
        if done.killed:
            landed += 1
            result.faults += 1
            continue
        if done.returncode not in allowed:
            result.fail(f"{fault.describe()}: ended {done.returncode}: {done.tail()}")
            return False
    result.outcome = f"resumed after {landed} kill{'s' if landed != 1 else ''}"
    return True


def pull_trial(
    ctx: RunContext, rig: PullRig, index: int, needles: Needles
) -> Callable[[], TrialResult]:
    def trial() -> TrialResult:
        result = TrialResult("resumed")
        runs: list[Done] = []
        with ctx.folder(f"crash-pull-{index}") as root:
            case = rig.new_case(root / "case")
            total = len(rig.ops)
            args = rig.args(case)
            if not _kills(
                ctx, "crash-pull", index, total, case, "courier", args, result, (0,), runs
            ):
                return result
            sealed_bundles_ok(rig, case, result)  # before the resume: never a bad sealed bundle
            runs.append(finish_pull(rig, case, result))
            no_leaks(case, needles, result, runs, courier=True)
        return result

    return trial


def import_trial(
    ctx: RunContext, rig: ImportRig, index: int, needles: Needles
) -> Callable[[], TrialResult]:
    def trial() -> TrialResult:
        result = TrialResult("resumed")
        runs: list[Done] = []
        with ctx.folder(f"crash-import-{index}") as root:
            case = rig.new_case(root / "case")
            total = len(rig.ops)
            allowed = (0, PARTIAL_EXIT)
            args = rig.args(case)
            if not _kills(
                ctx, "crash-import", index, total, case, "center", args, result, allowed, runs
            ):
                return result
            runs.append(finish_import(rig, case, result))
            no_leaks(case, needles, result, runs, courier=False)
        return result

    return trial


def run_pull(ctx: RunContext, rig: PullRig) -> Row:
    started = time.monotonic()
    row = Row("1 crash: courier pull", note=f"seed {ctx.seed}; run makes {op_summary(rig.ops)}")
    needles = rig_needles(rig)
    ctx.run_trials(
        row, ((f"crash-pull #{i}", pull_trial(ctx, rig, i, needles)) for i in range(ctx.trials))
    )
    return timed(row, started)


def run_import(ctx: RunContext, rig: ImportRig) -> Row:
    started = time.monotonic()
    row = Row("1 crash: center import", note=f"seed {ctx.seed}; run makes {op_summary(rig.ops)}")
    needles = rig_needles(rig)
    ctx.run_trials(
        row,
        ((f"crash-import #{i}", import_trial(ctx, rig, i, needles)) for i in range(ctx.trials)),
    )
    return timed(row, started)
