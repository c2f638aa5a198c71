"""Scenario 2, I/O faults: the Nth write, fsync or rename fails with ENOSPC or EIO.

For `courier pull` and `center import`, every N from 1 to the number of such operations an
uninterrupted run makes, for each kind and both errors. Each time the command must either
succeed or stop with a clear error: a domain error's exit code and panel, no traceback, no
patient data or key in its output. The state it leaves must hold no sealed bad bundle and no
half-stored study (`center check` may find only orphan objects), and a normal run must then
finish the job exactly as an uninterrupted run does.

The final flush inside encryption is checked in-process too: pyrage swallows an error at its
last write, so :func:`common.crypto.encrypt_to_file` must still raise, for every object size
around the age chunk boundary, and leave no file behind.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common.boundary import INTERNAL_EXIT
from common.crypto import decrypt_bytes, encrypt_to_file, generate_age_keypair
from common.errors import ALL_ERRORS
from reliability import oracle
from reliability.endstate import (
    finish_import,
    finish_pull,
    no_leaks,
    rig_needles,
    sealed_bundles_ok,
)
from reliability.harness import Row, RunContext, TrialResult, timed
from reliability.leakscan import Needles
from reliability.rigs import COUNTED, PARTIAL_EXIT, ImportRig, PullRig, op_summary
from reliability.world import ROOT, Case, Done, Fault

DOMAIN_EXITS = {cls.exit_code for cls in ALL_ERRORS}
ERRORS = ("enospc", "eio")


def frames(stderr: str) -> str:
    """The project's frames of a traceback printed with --debug, and its last line."""
    lines = stderr.splitlines()
    ours = [
        line.strip("│ ").split(" in ")[0].replace(str(ROOT) + "/", "")
        + " in "
        + line.strip("│ ").split(" in ")[-1]
        for line in lines
        if " in " in line and str(ROOT) in line and "faultinject" not in line
    ]
    last = next((line for line in reversed(lines) if "Error" in line), "")
    return " > ".join(ours) + f" : {last.strip()}"


def clean_error(done: Done, result: TrialResult, debug: Callable[[], Done] | None = None) -> None:
    """A failed command must say so clearly: its domain error and panel, no traceback.

    For an internal error, *debug* re-runs the same case with --debug to name the frames.
    """
    where = " ".join(done.argv[-6:])
    if done.returncode == INTERNAL_EXIT or done.returncode not in DOMAIN_EXITS:
        trace = frames(debug().stderr) if debug is not None else ""
        result.fail(f"not a domain error ({done.returncode}) for {where}: {done.tail()} {trace}")
    elif "Traceback" in done.stderr or "error:" not in done.stderr:
        result.fail(f"no clear error panel ({done.returncode}): {done.tail()}")


def _faults(counts: dict[str, int]) -> Iterator[Fault]:
    for kind in COUNTED:
        for code in ERRORS:
            for n in range(1, counts[kind] + 1):
                yield Fault(n, code, kind)


def pull_trial(
    rig: PullRig, ctx: RunContext, fault: Fault, needles: Needles
) -> Callable[[], TrialResult]:
    def trial() -> TrialResult:
        result = TrialResult("completed", faults=1)
        with ctx.folder(f"io-pull-{fault.describe()}") as root:
            case = rig.new_case(root / "case")
            done = case.run("courier", *rig.args(case), fault=fault)
            if done.returncode != 0:
                result.outcome = "clean-error"
                clean_error(done, result, lambda: _debug(rig, root, fault, "courier"))
            sealed_bundles_ok(rig, case, result)
            finished = finish_pull(rig, case, result)
            no_leaks(case, needles, result, [done, finished], courier=True)
        return result

    return trial


def half_stored(rig: ImportRig, case: Case, result: TrialResult) -> None:
    """After a failed import: every cataloged instance intact in the store, and each bundle
    in the catalog with exactly the instances and quarantine the reference has for it (a
    receipt whose files are not written yet, or orphan objects, are what a re-run repairs)."""
    dump = oracle.catalog_dump(case.archive)
    cataloged = {row[2] for row in dump["instances"]}
    intact = {sha for shas in oracle.archive_instances(case.archive).values() for sha in shas}
    if missing := cataloged - intact:
        result.fail(f"after the failed import, {len(missing)} cataloged object(s) are not stored")
    bundles = {row[0] for row in dump["bundles"]}
    for name, column in (("instances", 4), ("quarantine", 0)):
        want = sorted(r for r in rig.reference[name] if r[column] in bundles)
        if dump[name] != want:
            result.fail(f"{name} of the imported bundles differ from the reference: half-stored")


def import_trial(
    rig: ImportRig, ctx: RunContext, fault: Fault, needles: Needles
) -> Callable[[], TrialResult]:
    def trial() -> TrialResult:
        result = TrialResult("completed", faults=1)
        with ctx.folder(f"io-import-{fault.describe()}") as root:
            case = rig.new_case(root / "case")
            done = case.run("center", *rig.args(case), fault=fault)
            if done.returncode not in (0, PARTIAL_EXIT):
                result.outcome = "clean-error"
                clean_error(done, result, lambda: _debug(rig, root, fault, "center"))
                half_stored(rig, case, result)
            finished = finish_import(rig, case, result)
            no_leaks(case, needles, result, [done, finished], courier=False)
        return result

    return trial


def _debug(rig: PullRig | ImportRig, root: Path, fault: Fault, app: str) -> Done:
    """The same faulty run in a fresh copy, with --debug (for the traceback)."""
    case = rig.new_case(root / "debug")
    return case.run(app, *rig.args(case), fault=fault, debug=True)


def run_pull(ctx: RunContext, rig: PullRig) -> Row:
    started = time.monotonic()
    counts = {kind: rig.count(kind) for kind in COUNTED}
    row = Row("2 I/O faults: courier pull", note=f"N = 1..all of {op_summary(rig.ops)}")
    needles = rig_needles(rig)
    ctx.run_trials(
        row,
        ((f"io-pull {f.describe()}", pull_trial(rig, ctx, f, needles)) for f in _faults(counts)),
    )
    return timed(row, started)


def run_import(ctx: RunContext, rig: ImportRig) -> Row:
    started = time.monotonic()
    counts = {kind: rig.count(kind) for kind in COUNTED}
    row = Row("2 I/O faults: center import", note=f"N = 1..all of {op_summary(rig.ops)}")
    needles = rig_needles(rig)
    ctx.run_trials(
        row,
        (
            (f"io-import {f.describe()}", import_trial(rig, ctx, f, needles))
            for f in _faults(counts)
        ),
    )
    return timed(row, started)


# -- the final flush inside encryption -------------------------------------------------------

SIZES = (0, 1, 4095, 65535, 65536, 65537, 3 * 65536 + 17, 1 << 20)


def _encrypt_with_fault(tmp: Path, size: int, fail_at: int, code: int, short: bool) -> TrialResult:
    """Encrypt *size* bytes while os.write fails at its *fail_at*-th call from the end (1 =
    the final flush); a *short* fault returns 0 bytes written instead of raising."""
    result = TrialResult("clean-error", faults=1)
    keys = generate_age_keypair()
    plain = os.urandom(size)
    calls: list[int] = []
    real_write = os.write

    def counting(fd: int, data: Any) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    os.write = counting
    try:
        encrypt_to_file(_Reader(plain), tmp / "count.age", [keys.recipient])
    finally:
        os.write = real_write
    target = len(calls) - fail_at + 1
    if target < 1:
        return TrialResult("not-applicable")
    seen = [0]

    def failing(fd: int, data: Any) -> int:
        seen[0] += 1
        if seen[0] == target:
            if short:
                return 0
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    dst = tmp / "object.age"
    os.write = failing
    try:
        encrypt_to_file(_Reader(plain), dst, [keys.recipient])
    except OSError:
        if dst.exists():
            result.fail(f"size {size}: the failed encryption left {dst.name}")
        return result
    finally:
        os.write = real_write
    result.outcome = "completed"
    if decrypt_bytes(dst.read_bytes(), keys.identity) != plain:
        result.fail(f"size {size}, write {fail_at} from the end: returned OK with a bad file")
        result.lost += 1
    return result


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n is None or n < 0 else self._pos + n
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


def run_encrypt_flush(ctx: RunContext) -> Row:
    started = time.monotonic()
    row = Row(
        "2 I/O faults: encryption flush",
        note="pyrage's last writes, in-process",
        measures=frozenset({"lost"}),
    )
    with ctx.folder("io-flush") as root:
        for size in SIZES:
            for fail_at in (1, 2, 3):
                for code, short in ((errno.ENOSPC, False), (errno.EIO, False), (0, True)):
                    folder = root / f"{size}-{fail_at}-{code}-{short}"
                    folder.mkdir()
                    result = _encrypt_with_fault(folder, size, fail_at, code, short)
                    if result.outcome != "not-applicable":
                        row.add(f"flush size {size} write -{fail_at} {code or 'short'}", result)
    return timed(row, started)
