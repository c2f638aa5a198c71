"""Scenario 5, leaks: after whole workflows, no patient data or key material where none belongs.

One world goes through the real CLIs, every command with ``--debug``: facility set-up, scans,
pulls (one with the clinic's folder read-only, so the receipt is kept encrypted on the laptop),
imports, deliveries of storage receipts, delivery confirmations, verification, the visit log,
fixity and audit checks; then failures: a wrong passphrase, a missing terminal, a damaged
bundle, full disks (ENOSPC), and unexpected exceptions injected at points spread over a pull and
an import (reliability/raiseat.py), whose tracebacks ``--debug`` prints.

The terminal holds A and B studies of patients with ASCII, accented and Japanese names, and
A files with an invalid birth date and with a name in an undeclared character set. Needles:
reliability/leakscan.py. Where they are looked for:

* the drive, every byte and file name; the courier's home (journal, WAL, pending receipts):
  no patient datum, no secret;
* the stderr of every command, courier or center, including tracebacks: none of either;
* the courier's stdout: none of either, except that `courier scan` and `courier receipt verify`
  may show accession numbers and UIDs (the operator's review of the visit, a clinic document);
* the clinic's receipts folder: no name, patient ID or birth date (accessions and UIDs are
  what a receipt lists); the center's archive: no secret in clear (it holds patient data by
  design) and the center's stdout: no secret.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from center.core.archive import open_archive
from common.boundary import INTERNAL_EXIT
from common.crypto import age_passphrase_decrypt
from courier.core.device import CourierHome, load_device, unlock
from examples.clinic_terminal import TerminalManifest, TerminalSpec
from reliability.harness import Row, RunContext, TrialResult, timed
from reliability.leakscan import (
    Leak,
    Needles,
    patient_needles,
    scan_bytes,
    scan_tree,
    secret_needles,
)
from reliability.raiseat import MESSAGE
from reliability.rigs import trace_ops
from reliability.world import (
    CENTER_PASS,
    COURIER_PASS,
    ESCROW_PASS,
    PASSPHRASES,
    ROOT,
    Case,
    Done,
    Fault,
    cli_env,
    copy_tree,
    make_center,
    make_device,
    make_terminal,
    pull_args,
    run_cli,
)

LEAK_SPEC = TerminalSpec(
    seed=91, patients=8, studies=10, series_per_study=(1, 2), instances_per_series=(1, 2),
    pixel_bytes=1024, a_fraction=0.6,
)  # fmt: skip
RAISE_POINTS = 12  # unexpected exceptions per command traced
REVIEW_KINDS = ("patient-name", "patient-id", "birth-date")  # never even on review screens


@dataclass
class Needlework:
    patients: Needles
    secrets: Needles
    leaks: list[Leak] = field(default_factory=list)
    checked: int = 0

    def all(self) -> Needles:
        return Needles(self.patients.items + self.secrets.items)

    def review(self) -> Needles:
        return Needles(
            [n for n in self.patients.items if n.kind in REVIEW_KINDS] + self.secrets.items
        )

    def output(self, done: Done, *, stdout: Needles | None = None) -> None:
        """stderr must hold neither; stdout is checked against *stdout* (default: both)."""
        label = " ".join(a for a in done.argv if not a.startswith("/"))[-80:]
        self.leaks += scan_bytes(f"stderr of {label}", done.stderr.encode(), self.all())
        self.leaks += scan_bytes(f"stdout of {label}", done.stdout.encode(), stdout or self.all())
        self.checked += 1


def _odd_files(terminal: Path, template: Path) -> None:
    """Two A files whose values a reader may choke on and name in an error or a warning."""
    source = pydicom.dcmread(template)
    ds = source.copy()
    ds.PatientBirthDate = "1961-13-45"  # not a DA
    ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.1"
    ds.save_as(terminal / "odd-birth-date.dcm", enforce_file_format=True)
    ds = source.copy()
    ds.SpecificCharacterSet = "ISO_IR 100"  # declared Latin-1, written in UTF-8
    ds.PatientName = "Ærøskøbing^Søren"
    ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.2"
    ds.save_as(terminal / "odd-charset.dcm", enforce_file_format=True)
    raw = (terminal / "odd-charset.dcm").read_bytes()
    latin, utf8 = "Ærøskøbing^Søren".encode("latin-1"), "Ærøskøbing^Søren".encode()
    (terminal / "odd-charset.dcm").write_bytes(raw.replace(latin, utf8[: len(latin)], 1))


def _needles(case: Case, manifests: list[TerminalManifest]) -> Needlework:
    with open_archive(case.archive) as opened:
        keys = opened.unlock(CENTER_PASS)
    escrow = age_passphrase_decrypt(
        (case.archive / "ESCROW-identity-TAKE-OFFLINE.age").read_bytes(), ESCROW_PASS
    )
    escrow_identity = escrow.decode().strip().splitlines()[-1]
    device = unlock(load_device(CourierHome(case.home)), COURIER_PASS)
    secrets = secret_needles(
        identities=[keys.identity, escrow_identity, device.age_identity],
        seeds=[keys.signing_seed, device.signing_seed, device.journal_key()],
        passphrases=PASSPHRASES,
    )
    extra = Needles()
    for name in ("Ærøskøbing", "Ærøskøbing^Søren", "1961-13-45", "19611345"):
        extra.add("patient-name" if "^" in name or "Æ" in name else "birth-date", name)
    patients = patient_needles(manifests)
    return Needlework(Needles(patients.items + extra.items), secrets)


def _raised(case: Case, app: str, args: list[str], n: int) -> Done:
    argv = [sys.executable, "-m", "reliability.raiseat", str(n), app, "--debug", *args]
    done = subprocess.run(
        argv, cwd=ROOT, env=case.env, capture_output=True, text=True, timeout=180, check=False
    )
    return Done(argv, done.returncode, done.stdout, done.stderr, 0.0)


def _spread(total: int, count: int) -> list[int]:
    return sorted({1 + round(i * (total - 1) / max(1, count - 1)) for i in range(count)})


def _workflow(ctx: RunContext, base: Path) -> tuple[Needlework, TrialResult]:
    result = TrialResult("scanned")
    case = Case(base / "world", cli_env(base / "world"))
    case.root.mkdir(parents=True)
    make_center(case.archive)
    make_device(case.home, case.archive)
    case.drive.mkdir()
    terminal = make_terminal(base / "terminal", LEAK_SPEC)
    _odd_files(terminal.root, terminal.root / terminal.manifest.a_studies[0].instances[0].path)
    manifests = [terminal.manifest]
    work = _needles(case, manifests)
    review = work.review()

    def run(app: str, *args: str, fault: Fault | None = None, stdout: Needles | None = None,
            env: dict[str, str] | None = None, fails: bool = False) -> Done:  # fmt: skip
        done = run_cli(app, [*args], env or case.env, fault=fault, debug=True)
        work.output(done, stdout=stdout if app == "courier" else (stdout or work.secrets))
        if (done.returncode != 0) != fails and done.returncode != 41:
            result.fail(f"{app} {args[0]} ended {done.returncode}, unexpectedly: {done.tail()}")
        elif fails and done.returncode == INTERNAL_EXIT:
            result.fail(f"{app} {args[0]} crashed instead of a clear error: {done.tail()}")
        return done

    receipts = case.receipts
    run(
        "courier",
        "facility",
        "add",
        "clinic-1",
        "--name",
        "Leak Clinic",
        "--source",
        str(terminal.root),
        "--receipts",
        str(receipts),
    )
    run("courier", "scan", "clinic-1", stdout=review)
    run("courier", "scan", "clinic-1", "--json", stdout=review)
    run("courier", "pull", "clinic-1", "--drive", str(case.drive))
    run("courier", "pull", "clinic-1", "--drive", str(case.drive), "--json")
    run("center", "import", str(case.drive))
    manifests.append(
        make_terminal(terminal.root, LEAK_SPEC, start_index=LEAK_SPEC.studies).manifest
    )
    work.patients = _needles(case, manifests).patients
    review = work.review()  # the new patients' review needles too
    blocked = base / "not-a-folder"  # the clinic's folder cannot be made (even by root)
    blocked.write_text("x")
    run("courier", "pull", "clinic-1", "--drive", str(case.drive), "--receipts", str(blocked / "r"))
    pending = list((case.home / "pending-receipts").rglob("*.age"))
    if not pending:
        result.fail("the receipt the clinic's folder could not take is not kept on the laptop")
    work.leaks += scan_tree(case.home, work.all(), label="courier home with pending receipts")
    work.checked += 1
    run("courier", "pull", "clinic-1", "--drive", str(case.drive))
    run("courier", "deliver", "clinic-1", "--drive", str(case.drive))
    run("center", "import", str(case.drive))
    run("courier", "pull", "clinic-1", "--drive", str(case.drive), "--json")
    run("courier", "verify", str(case.drive))
    run("courier", "log")
    run("courier", "log", "--json")
    for receipt in sorted(receipts.glob("*.json")):
        run("courier", "receipt", "verify", str(receipt), stdout=review)
    run("center", "check", "--read-data")
    run("center", "audit", "verify")
    # failures
    wrong = {**case.env, "COURIER_PASSPHRASE": "not-the-passphrase", "CENTER_PASSPHRASE": "not-it"}
    run("courier", "pull", "clinic-1", "--drive", str(case.drive), env=wrong, fails=True)
    run("center", "import", str(case.drive), env=wrong, fails=True)
    run(
        "courier",
        "pull",
        "clinic-1",
        "--source",
        str(base / "nowhere"),
        "--drive",
        str(case.drive),
        fails=True,
    )
    newest = max((case.drive / "bundles").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    damaged = newest / "data" / "s0000" / "000001.age"
    damaged.write_bytes(damaged.read_bytes()[:-5])
    run("courier", "verify", str(case.drive), fails=True)
    (terminal.root / "more").mkdir()
    manifests.append(
        make_terminal(terminal.root / "more", LEAK_SPEC, start_index=3 * LEAK_SPEC.studies).manifest
    )
    work.patients = _needles(case, manifests).patients
    review = work.review()  # the new patients' review needles too
    run(
        "courier",
        "pull",
        "clinic-1",
        "--drive",
        str(case.drive),
        fault=Fault(3, "enospc", "write"),
        fails=True,
    )
    run("courier", "pull", "clinic-1", "--drive", str(case.drive))
    run("center", "import", str(case.drive), fault=Fault(3, "enospc", "write"), fails=True)
    run("center", "import", str(case.drive))  # the damaged bundle was imported before
    result.faults += 6
    (terminal.root / "later").mkdir()
    manifests.append(
        make_terminal(
            terminal.root / "later", LEAK_SPEC, start_index=5 * LEAK_SPEC.studies
        ).manifest
    )
    work.patients = _needles(case, manifests).patients
    review = work.review()  # the new patients' review needles too
    _tracebacks(case, base, terminal.root, work, result)
    work.leaks += scan_tree(case.drive, work.all(), label="drive")
    work.leaks += scan_tree(case.home, work.all(), label="courier home")
    work.leaks += scan_tree(receipts, work.review(), label="clinic receipts")
    work.leaks += scan_tree(case.archive, work.secrets, label="archive")
    work.checked += 4
    _controls(case, work, result)
    result.leaks = len(work.leaks)
    for leak in work.leaks[:20]:
        result.fail(leak.describe())
    result.outcome = "scanned"
    return work, result


def _controls(case: Case, work: Needlework, result: TrialResult) -> None:
    """The needles do match what the products write where patient data belongs (the
    archive's catalog, the clinic's receipts), and the workflow left what it should: a receipt
    delivered from the laptop later, and more than one bundle on the drive."""
    found = {leak.kind for leak in scan_tree(case.archive, work.patients)}
    if not {"patient-name", "patient-id", "birth-date", "accession", "uid"} <= found:
        result.fail(f"positive control: the archive's catalog shows only {sorted(found)}")
    if not {leak.kind for leak in scan_tree(case.receipts, work.patients)} >= {"accession", "uid"}:
        result.fail("positive control: the clinic's receipts show no accession or UID")
    if len(list(case.receipts.glob("reception-*.json"))) < 3:
        result.fail("the clinic's folder lacks reception receipts (pending ones not delivered?)")
    if len(list((case.drive / "bundles").iterdir())) < 3:
        result.fail("the workflow sealed fewer bundles than it should")


def _copy(src: Path, dst: Path) -> Case:
    copy_tree(src, dst)
    return Case(dst, cli_env(dst))


def _tracebacks(
    case: Case, base: Path, terminal: Path, work: Needlework, result: TrialResult
) -> None:
    """Unexpected exceptions at points spread over a pull and an import, shown with --debug."""
    snapshot = _copy(case.root, base / "snapshot-pull")
    pulled = _copy(case.root, base / "snapshot-import")
    done = pulled.run("courier", *pull_args("clinic-1", terminal, pulled.drive, pulled.receipts))
    if done.returncode != 0:
        result.fail(f"the pull before the traced import failed: {done.tail()}")
    for app, origin in (("courier", snapshot), ("center", pulled)):

        def args(c: Case, app: str = app) -> list[str]:
            if app == "courier":
                return pull_args("clinic-1", terminal, c.drive, c.receipts)
            return ["import", str(c.drive), "--json"]

        counting = _copy(origin.root, base / f"count-{app}")
        _, ops = trace_ops(counting, app, args(counting), base / f"trace-{app}.txt")
        shown = 0
        for n in _spread(len(ops), RAISE_POINTS):
            fresh = _copy(origin.root, base / f"raise-{app}-{n}")
            done = _raised(fresh, app, args(fresh), n)
            result.faults += 1
            shown += "Traceback" in done.stderr and MESSAGE in done.stderr
            work.output(done, stdout=work.all() if app == "courier" else work.secrets)
        if shown < RAISE_POINTS // 2:
            result.fail(
                f"{app}: only {shown} of {RAISE_POINTS} injected exceptions showed a traceback"
            )


def run(ctx: RunContext) -> Row:
    started = time.monotonic()
    row = Row(
        "5 leaks",
        note="drive, courier home, receipts, archive, outputs, --debug tracebacks",
        measures=frozenset({"leaks"}),
    )
    with ctx.folder("leaks") as base:
        work, result = _workflow(ctx, base)
        row.add("leak workflow", result)
        row.trials = work.checked  # each command's output and each folder is one scan
        if not result.failures:
            row.outcomes = Counter({"clean": work.checked})
    return timed(row, started)
