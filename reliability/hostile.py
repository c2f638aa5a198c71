"""Scenario 4, hostile and odd DICOM on the clinic terminal: never a crash, never a hang, every
skipped file reported with its reason.

Each hypothesis example writes a terminal: a few valid "A" instances and a batch of hostile
files (reliability/dicomfuzz.py). One more trial uses pydicom's bundled test files, and special
files a terminal may hold (a named pipe, symbolic links, a folder named like a file). Then:

* every file's header is read in a child process, with a watchdog: a file taking longer than
  PER_FILE seconds is a hang; an exception other than the reader's own HeaderError is a crash;
* `courier scan` and `courier pull` run with a time limit proportional to the files; they must
  succeed, account for every file (carried, not selected, or skipped with a reason, the reason
  free of patient data), and carry every file the reader accepts that the rule selects, byte
  for byte;
* `center import` of that drive must not crash either.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pydicom.data
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from common.boundary import INTERNAL_EXIT
from examples.clinic_terminal import TerminalSpec
from reliability import oracle
from reliability.dicomfuzz import materialise, specs
from reliability.harness import Row, RunContext, TrialResult, timed
from reliability.leakscan import Needles, patient_needles, scan_bytes
from reliability.world import (
    ROOT,
    Case,
    cli_env,
    make_center,
    make_device,
    make_terminal,
)

PER_FILE = 20.0  # seconds: far beyond any real header read, even on a busy machine
PER_COMMAND_FILE = 2.0  # seconds a file for a whole scan, pull or import (about 10 ms is usual)
BASE_SPEC = TerminalSpec(
    seed=81, patients=2, studies=3, series_per_study=(1, 1), instances_per_series=(1, 2),
    pixel_bytes=512, a_fraction=1.0,
)  # fmt: skip
FILES_PER_EXAMPLE = 10
PARTIAL_EXIT = 41


def probe(files: list[Path], result: TrialResult, *, limit: float = PER_FILE) -> dict[str, str]:
    """Read every header in a child, watched (*limit* seconds a file): path -> "ok" or the
    skip reason."""
    outcome: dict[str, str] = {}
    child = subprocess.Popen(
        [sys.executable, "-m", "reliability.headerprobe", *map(str, files)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    current = None
    try:
        while True:
            ready, _, _ = select.select([child.stdout], [], [], limit)
            if not ready:
                name = files[current].name if current is not None else "?"
                result.fail(f"reading the header of {name} hung (over {limit:.0f} s)")
                return outcome
            line = child.stdout.readline()
            if not line:
                break
            word, number, *rest = line.rstrip("\n").split(" ", 2)
            current = int(number)
            path = files[current]
            if word == "crash":
                result.fail(f"the header reader crashed on {path.name}: {rest}")
            elif word == "ok":
                outcome[str(path)] = "ok"
            elif word == "skip":
                outcome[str(path)] = rest[0] if rest else ""
    finally:
        child.kill()
        child.wait()
    if child.returncode not in (0, -9):
        result.fail(f"the header probe died ({child.returncode})")
    return outcome


def _selected(path: Path) -> bool:
    """Independently of the product: does pydicom see an A accession in this file?"""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["AccessionNumber"])
        return str(ds.get("AccessionNumber", "")).startswith("A")
    except Exception:  # noqa: BLE001 - anything pydicom cannot read is not selected here
        return False


def check_terminal(
    case: Case, terminal: Path, needles: Needles, result: TrialResult, *, special: int = 0
) -> None:
    """Probe, scan, pull and import *terminal*; *special* files are not regular files."""
    files = sorted(p for p in terminal.rglob("*") if p.is_file() and not p.is_symlink())
    verdicts = probe(files, result)
    limit = 60 + PER_COMMAND_FILE * len(files)
    args = ["clinic-1", "--source", str(terminal), "--json"]
    scanned = case.run("courier", "scan", *args, timeout=limit)
    if scanned.returncode != 0:
        result.fail(f"courier scan failed ({scanned.returncode}): {scanned.tail()}")
        return
    pulled = case.run("courier", "pull", *args, "--drive", str(case.drive), timeout=limit)
    if pulled.returncode != 0:
        result.fail(f"courier pull failed ({pulled.returncode}): {pulled.tail()}")
        return
    for done in (scanned, pulled):
        for leak in scan_bytes("courier stderr", done.stderr.encode(), needles):
            result.leaks += 1
            result.fail(leak.describe())
    report: dict[str, Any] = json.loads(pulled.stdout)
    skipped = {s["file"]: s["reason"] for s in report["skipped"]}
    accounted = report["instances"] + report["not_selected"] + report["already_carried"]
    if accounted + len(skipped) != report["files_seen"] or report["files_seen"] < len(files):
        seen = report["files_seen"]
        result.fail(
            f"files: {accounted} + {len(skipped)} skipped of {seen} seen, {len(files)} here"
        )
    for name, reason in skipped.items():
        if not reason.strip():
            result.fail(f"{name} skipped without a reason")
        for leak in scan_bytes(f"skip reason of {name}", reason.encode(), needles):
            result.leaks += 1
            result.fail(leak.describe())
    if special and len([s for s in skipped if s.startswith("special/")]) < special:
        result.fail(f"special files not reported as skipped: {sorted(skipped)}")
    identity = oracle.center_identity(case.archive)
    contents = oracle.read_drive(case.drive, identity)
    for problem in contents.problems():
        result.fail(problem)
    carried = {sha for shas in contents.objects.values() for sha in shas}
    for path in files:
        rel = path.relative_to(terminal).as_posix()
        verdict = verdicts.get(str(path), "")
        if verdict != "ok" and rel not in skipped:
            result.fail(f"{rel}: its header cannot be read ({verdict}), yet it is not reported")
        readable = verdicts.get(str(path)) == "ok" and _selected(path) and rel not in skipped
        if readable and oracle.sha(path.read_bytes()) not in carried:
            result.lost += 1
            result.fail(f"{rel}: readable and selected, yet neither carried nor skipped")
    imported = case.run("center", "import", str(case.drive), "--json", timeout=limit)
    if imported.returncode in (INTERNAL_EXIT, -1000) or imported.returncode < 0:
        result.fail(
            f"center import of the pulled files failed ({imported.returncode}): {imported.tail()}"
        )
    result.outcome = "survived"


def _world(base: Path) -> tuple[Case, list[bytes], Needles]:
    case = Case(base / "world", cli_env(base / "world"))
    case.root.mkdir(parents=True)
    make_center(case.archive)
    make_device(case.home, case.archive)
    terminal = make_terminal(base / "bases", BASE_SPEC)
    bases = [
        (terminal.root / i.path).read_bytes()
        for s in terminal.manifest.studies
        for i in s.instances
    ]
    return case, bases, patient_needles([terminal.manifest])


def _fresh(case: Case, where: Path) -> Case:
    fresh = Case(where, cli_env(where))
    shutil.copytree(case.root, where, symlinks=True)
    (where / "drive").mkdir(exist_ok=True)
    return fresh


def _pydicom_trial(case: Case, base: Path, needles: Needles) -> TrialResult:
    """pydicom's bundled files, plus a named pipe, symbolic links and a folder named .dcm."""
    result = TrialResult("pydicom-files", faults=0)
    work = _fresh(case, base / "pydicom-case")
    terminal = base / "pydicom-terminal"
    shutil.copytree(
        Path(pydicom.data.__file__).parent,
        terminal,
        ignore=shutil.ignore_patterns("__pycache__", "*.py"),
    )
    special = terminal / "special"
    special.mkdir()
    os.mkfifo(special / "pipe.dcm")
    some = sorted(terminal.rglob("*.dcm"))[0]
    (special / "link.dcm").symlink_to(some)
    (special / "loop.dcm").symlink_to(special / "loop.dcm")
    (special / "folder.dcm").mkdir()
    result.faults = sum(1 for _ in terminal.rglob("*"))
    check_terminal(work, terminal, needles, result, special=3)
    return result


def run(ctx: RunContext) -> Row:
    started = time.monotonic()
    row = Row(
        "4 hostile DICOM",
        note=f"hypothesis, seed {ctx.seed}; + pydicom's files",
        measures=frozenset({"lost", "leaks"}),
    )
    with ctx.folder("hostile") as base:
        case, bases, needles = _world(base)
        row.add("pydicom files", _pydicom_trial(case, base, needles))
        counter = [0]

        @seed(ctx.seed)
        @settings(
            max_examples=max(5, ctx.examples // 5),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(specs(len(bases)), min_size=1, max_size=FILES_PER_EXAMPLE))
        def example(batch: list[Any]) -> None:
            counter[0] += 1
            work = _fresh(case, base / f"example-{counter[0]}")
            terminal = work.root / "terminal"
            (terminal / "good").mkdir(parents=True)
            for number, data in enumerate(bases):
                (terminal / "good" / f"{number}.dcm").write_bytes(data)
            texts: list[str] = []
            for number, spec in enumerate(batch):
                data, values = materialise(spec, bases)
                (terminal / f"hostile-{number:02d}-{spec[0]}.dcm").write_bytes(data)
                texts += values
            extra = Needles(list(needles.items))
            for text in texts:
                extra.add("patient-name", text)
            result = TrialResult("?", faults=len(batch))
            try:
                check_terminal(work, terminal, extra, result)
            finally:
                shutil.rmtree(work.root, ignore_errors=True)
            row.add(f"hostile #{counter[0]}", result)
            if result.failures:
                raise AssertionError(f"{batch}: {result.failures[:3]}")

        try:
            example()
        except Exception as exc:  # noqa: BLE001 - hypothesis' report of the falsifying example
            row.failures.append(f"falsifying example (hypothesis, seed {ctx.seed}): {exc!r}"[:3000])
    return timed(row, started)
