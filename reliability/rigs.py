"""The two subjects of the crash and I/O-fault scenarios, prepared once per run.

* :class:`PullRig`: a courier device enrolled at a center and a terminal (A and B studies, a
  file that is not DICOM, a truncated DICOM file). The subject is `courier pull` onto an empty
  drive; the expected result is one sealed bundle with every A instance once.
* :class:`ImportRig`: an archive that already imported one bundle, and a drive as the courier
  leaves it on its next rounds: that bundle again, a delivery confirmation of its storage
  receipt, a second bundle of the same clinic and a bundle of another clinic with one damaged
  object. The subject is `center import DRIVE`; the expected result is what an uninterrupted
  import leaves (catalog, store, quarantine, drive outbox), and a clean `center check`.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from common.bundle import format as fmt
from courier.core.device import CourierHome, load_device
from examples.clinic_terminal import TerminalManifest
from reliability import oracle
from reliability.world import (
    CRASH_SPEC,
    ROOT,
    SECOND_SPEC,
    THIRD_SPEC,
    Case,
    Terminal,
    cli_env,
    copy_tree,
    make_center,
    make_device,
    make_terminal,
    pull_args,
)

COUNTED = ("write", "fsync", "replace")
PARTIAL_EXIT = 41


def trace_ops(case: Case, app: str, args: list[str], out: Path) -> tuple[int, list[str]]:
    """Run *app* once under tests.courier.opcount; its exit status and counted operations."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.courier.opcount", str(out), app, *args],
        cwd=ROOT,
        env=case.env,
        capture_output=True,
        text=True,
        check=False,
    )
    ops = [line.split(" ", 2)[1] for line in out.read_text().splitlines()]  # "<n> <op> <path>"
    return done.returncode, [op for op in ops if op in COUNTED]


@dataclass
class PullRig:
    base: Path
    center: Path
    home: Path
    terminal: Terminal
    identity: str
    signing_public: bytes
    ops: list[str]

    def new_case(self, root: Path) -> Case:
        case = Case(root, cli_env(root))
        copy_tree(self.home, case.home)
        case.drive.mkdir()
        return case

    def args(self, case: Case) -> list[str]:
        return pull_args("clinic-1", self.terminal.root, case.drive, case.receipts)

    def count(self, kind: str) -> int:
        return self.ops.count(kind)


def add_odd_files(terminal: Path) -> None:
    """A file that is not DICOM and a DICOM file cut short: both must be skipped, named."""
    (terminal / "DICOM" / "notes.txt").write_text("not an image\n")
    first = sorted((terminal / "DICOM").rglob("*.dcm"))[0]
    (terminal / "DICOM" / "cut-short.dcm").write_bytes(first.read_bytes()[:-300])


def build_pull_rig(base: Path) -> PullRig:
    base.mkdir(parents=True, exist_ok=True)
    make_center(base / "center")
    make_device(base / "home", base / "center")
    terminal = make_terminal(base / "terminal", CRASH_SPEC)
    add_odd_files(terminal.root)
    rig = PullRig(
        base,
        base / "center",
        base / "home",
        terminal,
        oracle.center_identity(base / "center"),
        load_device(CourierHome(base / "home")).signing_public,
        [],
    )
    case = rig.new_case(base / "trace")
    status, rig.ops = trace_ops(case, "courier", rig.args(case), base / "trace.txt")
    if status != 0:
        raise RuntimeError(f"the uninterrupted pull failed ({status})")
    return rig


@dataclass
class ImportRig:
    base: Path
    subject: Path  # archive/ and drive/ before the import under test
    identity: str
    reference: dict[str, Any]
    objects: set[str]
    outbox: list[str]
    instances: dict[str, list[str]]
    quarantine_reports: int
    ops: list[str]
    manifests: list[TerminalManifest]

    def new_case(self, root: Path) -> Case:
        case = Case(root, cli_env(root))
        copy_tree(self.subject / "archive", case.archive)
        copy_tree(self.subject / "drive", case.drive)
        return case

    def args(self, case: Case) -> list[str]:
        return ["import", str(case.drive), "--json"]

    def count(self, kind: str) -> int:
        return self.ops.count(kind)


def _ok(done: Any, what: str, codes: tuple[int, ...] = (0,)) -> None:
    if done.returncode not in codes:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.tail()}")


def build_import_rig(base: Path) -> ImportRig:
    """Build the subject with the real CLIs, then import it once uninterrupted as reference."""
    base.mkdir(parents=True, exist_ok=True)
    world = Case(base / "world", cli_env(base / "world"))
    world.root.mkdir()
    make_center(world.archive)
    make_device(world.home, world.archive)
    world.drive.mkdir()
    first = make_terminal(base / "terminal-1", SECOND_SPEC)
    other = make_terminal(base / "terminal-2", THIRD_SPEC)
    _ok(
        world.run("courier", *pull_args("clinic-1", first.root, world.drive, world.receipts)),
        "pull 1",
    )
    _ok(world.run("center", "import", str(world.drive), "--json"), "import 1")
    arriving = replace(SECOND_SPEC, studies=2)
    later = make_terminal(first.root, arriving, start_index=SECOND_SPEC.studies)  # new studies
    _ok(
        world.run("courier", *pull_args("clinic-1", first.root, world.drive, world.receipts)),
        "pull 2",
    )
    third = world.run("courier", *pull_args("clinic-2", other.root, world.drive, world.receipts))
    _ok(third, "pull 3")
    if not list((world.drive / "returns").rglob("delivery-*.json")):
        raise RuntimeError("the second pull left no delivery confirmation")
    damaged = world.drive / fmt.BUNDLES_DIR / json.loads(third.stdout)["bundle_id"]
    damaged = damaged / fmt.object_relpath(2)
    damaged.write_bytes(damaged.read_bytes()[:-9] + b"damaged!!")
    subject = base / "subject"
    subject.mkdir()
    copy_tree(world.archive, subject / "archive")
    copy_tree(world.drive, subject / "drive")
    manifests = [first.manifest, later.manifest, other.manifest]
    identity = oracle.center_identity(world.archive)
    rig = ImportRig(base, subject, identity, {}, set(), [], {}, 0, [], manifests)
    reference = rig.new_case(base / "reference")
    _ok(reference.run("center", *rig.args(reference)), "the reference import", (PARTIAL_EXIT,))
    _ok(reference.run("center", "check", "--json"), "check after the reference import")
    rig.reference = oracle.catalog_dump(reference.archive)
    rig.objects = oracle.store_objects(reference.archive)
    rig.outbox = oracle.outbox_files(reference.drive)
    rig.instances = oracle.archive_instances(reference.archive)
    _reference_holds_the_terminals(rig.instances, [first, later, other])
    rig.quarantine_reports = len(list((reference.archive / "quarantine").rglob("report.json")))
    counting = rig.new_case(base / "trace")
    status, rig.ops = trace_ops(counting, "center", rig.args(counting), base / "trace.txt")
    if status != PARTIAL_EXIT:
        raise RuntimeError(f"the counted import ended {status}")
    return rig


def _reference_holds_the_terminals(stored: dict[str, list[str]], terminals: list[Terminal]) -> None:
    """The trials compare with the uninterrupted import; that import must itself hold every A
    instance of the terminals, byte for byte, but the one object damaged on the drive (which it
    quarantines). Otherwise a loss of the plain import would count as nothing lost."""
    expected = {uid: data for t in terminals for uid, data in t.a_instances().items()}
    accounting = oracle.account(expected, stored)
    if len(accounting.lost) != 1 or accounting.duplicated or accounting.altered:
        raise RuntimeError(
            f"the reference import does not hold the terminals: {len(accounting.lost)} lost "
            f"(1 expected: the damaged object), {len(accounting.duplicated)} duplicated, "
            f"{len(accounting.altered)} altered"
        )


def op_summary(ops: list[str]) -> str:
    counts = collections.Counter(ops)
    return ", ".join(f"{counts[k]} {k}" for k in COUNTED)
