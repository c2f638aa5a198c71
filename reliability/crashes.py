"""Scenario 1, crashes: `courier pull` and `center import` killed at random points, resumed.

Each trial kills the command (SIGKILL from inside, at the Nth write, fsync or rename, N drawn
from the run's seed over the operations an uninterrupted run makes); about a third of the
trials kill the first resume too. A normal run then finishes the job, and the end state is
compared with an uninterrupted run (reliability/endstate.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from reliability.endstate import finish_import, finish_pull, sealed_bundles_ok
from reliability.harness import Row, RunContext, TrialResult, timed
from reliability.rigs import PARTIAL_EXIT, ImportRig, PullRig, op_summary
from reliability.world import Case, Fault

SECOND_KILL = 0.35  # share of trials whose first resume is killed too


def _kills(
    ctx: RunContext, label: str, index: int, total: int, case: Case, app: str, args: list[str],
    result: TrialResult, allowed: tuple[int, ...],
) -> bool:  # fmt: skip
    """Kill *app* once or twice at random points; False when a child ended unexpectedly."""
    rng = ctx.rng(label, index)
    rounds = 2 if rng.random() < SECOND_KILL else 1
    landed = 0
    for _ in range(rounds):
        fault = Fault(rng.randint(1, total), "kill")
        done = case.run(app, *args, fault=fault)
        result.faults += 1
        if done.killed:
            landed += 1
            continue
        if done.returncode not in allowed:
            result.fail(f"{fault.describe()}: ended {done.returncode}: {done.tail()}")
            return False
    # A second kill point beyond what the resumed run still had to do does not land.
    result.outcome = f"resumed after {landed} kill{'s' if landed != 1 else ''}"
    return True


def pull_trial(ctx: RunContext, rig: PullRig, index: int) -> Callable[[], TrialResult]:
    def trial() -> TrialResult:
        result = TrialResult("resumed")
        with ctx.folder(f"crash-pull-{index}") as root:
            case = rig.new_case(root / "case")
            total = len(rig.ops)
            if not _kills(
                ctx, "crash-pull", index, total, case, "courier", rig.args(case), result, (0,)
            ):
                return result
            sealed_bundles_ok(rig, case, result)  # before the resume: never a bad sealed bundle
            finish_pull(rig, case, result)
        return result

    return trial


def import_trial(ctx: RunContext, rig: ImportRig, index: int) -> Callable[[], TrialResult]:
    def trial() -> TrialResult:
        result = TrialResult("resumed")
        with ctx.folder(f"crash-import-{index}") as root:
            case = rig.new_case(root / "case")
            total = len(rig.ops)
            allowed = (0, PARTIAL_EXIT)
            if not _kills(
                ctx, "crash-import", index, total, case, "center", rig.args(case), result, allowed
            ):
                return result
            finish_import(rig, case, result)
        return result

    return trial


def run_pull(ctx: RunContext, rig: PullRig) -> Row:
    started = time.monotonic()
    row = Row("1 crash: courier pull", note=f"seed {ctx.seed}; run makes {op_summary(rig.ops)}")
    ctx.run_trials(row, ((f"crash-pull #{i}", pull_trial(ctx, rig, i)) for i in range(ctx.trials)))
    return timed(row, started)


def run_import(ctx: RunContext, rig: ImportRig) -> Row:
    started = time.monotonic()
    row = Row("1 crash: center import", note=f"seed {ctx.seed}; run makes {op_summary(rig.ops)}")
    ctx.run_trials(
        row, ((f"crash-import #{i}", import_trial(ctx, rig, i)) for i in range(ctx.trials))
    )
    return timed(row, started)
