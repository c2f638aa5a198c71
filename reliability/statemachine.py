"""Scenario 7, the state machine: clinic visits and center work in any order, nothing lost.

A hypothesis RuleBasedStateMachine drives the real CLIs: new studies arrive on the terminal,
the courier scans, pulls, is interrupted (killed at a random point, i.e. the laptop dies or the
drive is pulled mid-write), unplugs its drive and plugs in the other one or the same one under a
new mount point, resumes, delivers; the center imports, imports again, and purges expired
studies (with a clock decades ahead: everything cataloged is expired, the clinic's contract says
delete). A sealed object may rot on the drive (one byte changed): the center must quarantine it
and the courier must bring it again, as the storage receipt promises. A drive may be lost in
transit: the operator releases its bundles and a new drive takes its name; the lost one may
turn up later and be imported, its instances already carried again.

After every step: the catalog holds only intact objects and no instance twice. At the end of
each example every drive is plugged in once more and the visit is finished (pull, import,
deliver), then the invariant must hold: every A instance on the terminal is on a valid sealed
bundle, stored at the center, tombstoned by a purge, or reported skipped with a reason.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import timedelta
from pathlib import Path

import hypothesis.core
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from center.core.archive import open_archive
from center.core.purge import purge
from common.bundle import format as fmt
from common.errors import NothingToRelease
from examples.clinic_terminal import TerminalSpec
from reliability import oracle
from reliability.harness import Row, RunContext, TrialResult, timed
from reliability.world import (
    NOW,
    OPERATOR,
    Case,
    Done,
    Fault,
    cli_env,
    copy_tree,
    make_center,
    make_device,
    make_terminal,
)

SPEC = TerminalSpec(
    seed=101, patients=3, studies=2, series_per_study=(1, 2), instances_per_series=(1, 2),
    pixel_bytes=1024, a_fraction=0.7,
)  # fmt: skip
FAR_FUTURE = NOW + timedelta(days=365 * 60)
DRIVES = ("d1", "d2")


def template(base: Path) -> Path:
    """Center, device, a clinic with a delete-on-expiry contract, a terminal, two drives."""
    case = Case(base, cli_env(base))
    base.mkdir(parents=True)
    make_center(case.archive)
    make_device(case.home, case.archive)
    make_terminal(base / "terminal", SPEC)
    done = case.run("center", "facility", "set", "clinic-1", "--on-expiry", "delete")
    if done.returncode != 0:
        raise RuntimeError(f"facility set failed: {done.tail()}")
    for name in DRIVES:
        (base / "shelf" / name).mkdir(parents=True)
        done = case.run("courier", "drive", "init", str(base / "shelf" / name))
        if done.returncode != 0:
            raise RuntimeError(f"drive init failed: {done.tail()}")
    return base


class Visits(RuleBasedStateMachine):
    """One clinic, one courier, two drives, one center (see the module's docstring)."""

    origin: Path
    workdir: Path
    row: Row
    counter = 0

    def __init__(self) -> None:
        super().__init__()
        Visits.counter += 1
        self.root = Visits.workdir / f"example-{Visits.counter}"
        copy_tree(Visits.origin, self.root)
        self.case = Case(self.root, cli_env(self.root))
        self.result = TrialResult("settled", faults=0)
        self.steps: list[str] = []
        self.next_study = SPEC.studies
        self.mounts = 0
        self.plugged: str | None = None
        self.skipped: dict[str, str] = {}
        self.rotten: set[Path] = set()
        self._plug("d1")

    # -- the drive in the laptop ------------------------------------------------------------

    def _mount(self) -> Path:
        return self.root / f"mnt-{self.mounts}"

    def _plug(self, name: str) -> None:
        self.mounts += 1
        (self.root / "shelf" / name).rename(self._mount())
        self.plugged = name

    def _unplug(self) -> None:
        assert self.plugged is not None
        self._mount().rename(self.root / "shelf" / self.plugged)
        self.plugged = None

    def _run(self, app: str, *args: str, fault: Fault | None = None) -> Done:
        self.steps.append(f"{app} {args[0]}" + (f" ({fault.describe()})" if fault else ""))
        return self.case.run(app, *args, fault=fault)

    def _expect(self, done: Done, codes: tuple[int, ...], what: str) -> None:
        if done.returncode not in codes:
            self.result.fail(f"{what} ended {done.returncode}: {done.tail()} (steps: {self.steps})")
            raise AssertionError(self.result.failures[-1])

    def _pull_args(self) -> list[str]:
        terminal = str(self.root / "terminal")
        receipts = str(self.root / "receipts")
        return [
            "pull",
            "clinic-1",
            "--source",
            terminal,
            "--drive",
            str(self._mount()),
            "--receipts",
            receipts,
            "--json",
        ]

    # -- rules --------------------------------------------------------------------------------

    @rule(count=st.integers(1, 2))
    def new_studies(self, count: int) -> None:
        spec = TerminalSpec(**{**SPEC.__dict__, "studies": count})
        make_terminal(self.root / "terminal", spec, start_index=self.next_study)
        self.next_study += count
        self.steps.append(f"{count} new studies")

    @rule()
    def scan(self) -> None:
        terminal = str(self.root / "terminal")
        self._expect(
            self._run("courier", "scan", "clinic-1", "--source", terminal, "--json"), (0,), "scan"
        )

    @precondition(lambda self: self.plugged is not None)
    @rule()
    def pull(self) -> None:
        done = self._run("courier", *self._pull_args())
        self._expect(done, (0,), "pull")
        self.skipped = {s["file"]: s["reason"] for s in json.loads(done.stdout)["skipped"]}

    @precondition(lambda self: self.plugged is not None)
    @rule(n=st.integers(1, 90))
    def interrupted_pull(self, n: int) -> None:
        self.result.faults += 1
        done = self._run("courier", *self._pull_args(), fault=Fault(n, "kill"))
        self._expect(done, (-9, 0), "interrupted pull")

    @precondition(lambda self: self.plugged is not None)
    @rule()
    def unplug(self) -> None:
        self.result.faults += 1
        self.steps.append(f"unplug {self.plugged}")
        self._unplug()

    @precondition(lambda self: self.plugged is None)
    @rule(name=st.sampled_from(DRIVES))
    def replug(self, name: str) -> None:
        self.steps.append(f"plug {name} at a new mount point")
        self._plug(name)

    @precondition(lambda self: self.plugged is not None)
    @rule()
    def deliver(self) -> None:
        receipts = str(self.root / "receipts")
        done = self._run(
            "courier", "deliver", "clinic-1", "--drive", str(self._mount()), "--receipts", receipts
        )
        self._expect(done, (0,), "deliver")

    @precondition(lambda self: self.plugged is not None)
    @rule(again=st.booleans())
    def import_drive(self, again: bool) -> None:
        done = self._run("center", "import", str(self._mount()), "--json")
        self._expect(done, (0, 27, 41), "import")
        if again:
            before = oracle.catalog_dump(self.case.archive)["instances"]
            done = self._run("center", "import", str(self._mount()), "--json")
            self._expect(done, (0, 27, 41), "re-import")
            if oracle.catalog_dump(self.case.archive)["instances"] != before:
                self.result.fail(f"a re-import changed the catalog (steps: {self.steps})")

    @rule()
    def purge_expired(self) -> None:
        self.steps.append("purge (60 years on)")
        with open_archive(self.case.archive) as archive:
            purge(
                archive.conn,
                archive.store,
                now=FAR_FUTURE,
                operator=OPERATOR,
                execute=True,
                lock_root=archive.paths.root,
            )

    @precondition(lambda self: self.plugged is not None)
    @rule(pick=st.integers(0, 1 << 16))
    def rot(self, pick: int) -> None:
        """One byte of a sealed object on the drive changes (bit rot, a bad copy)."""
        objects = sorted(
            p for b in (self._mount() / fmt.BUNDLES_DIR).iterdir() if (b / fmt.SIGNATURE).exists()
            for p in (b / fmt.DATA).rglob("*.age")
        )  # fmt: skip
        objects = [p for p in objects if p.relative_to(self._mount()) not in self.rotten]
        if not objects:
            return
        target = objects[pick % len(objects)]
        self.rotten.add(target.relative_to(self._mount()))  # rotting it twice could undo it
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x40
        target.write_bytes(bytes(data))
        self.result.faults += 1
        self.steps.append(f"rot {target.relative_to(self._mount())}")

    @rule(name=st.sampled_from(DRIVES))
    def lose_drive(self, name: str) -> None:
        """A drive is lost in transit: the operator releases its bundles (`courier bundle
        release`: their instances no storage receipt confirms are pulled again) and prepares a
        new drive under the same name."""
        if self.plugged == name:
            self._unplug()
        shelf = self.root / "shelf" / name
        volume = (shelf / fmt.VOLUME_MARKER).read_text("ascii").split()[1]
        (self.root / "lost").mkdir(exist_ok=True)
        shelf.rename(self.root / "lost" / f"{len(self.steps):03d}-{name}")
        self.result.faults += 1
        self.steps.append(f"lose {name}")
        done = self._run("courier", "bundle", "list", "--json")
        self._expect(done, (0,), "bundle list")
        for bundle in json.loads(done.stdout):
            if bundle["volume_id"] == volume and not bundle["released_by_operator"]:
                done = self._run(
                    "courier", "bundle", "release", bundle["bundle_id"], "--reason", "lost",
                    "--yes", "--json",
                )  # fmt: skip
                self._expect(done, (0, NothingToRelease.exit_code), "bundle release")
        shelf.mkdir()
        self._expect(self._run("courier", "drive", "init", str(shelf)), (0,), "drive init")

    @precondition(
        lambda self: (self.root / "lost").is_dir() and any((self.root / "lost").iterdir())
    )
    @rule()
    def lost_drive_turns_up(self) -> None:
        """The oldest lost drive turns up and the center imports it: the instances carried again
        since are recognised as stored already (the invariant: none is cataloged twice)."""
        found = sorted((self.root / "lost").iterdir())[0]
        self.steps.append(f"lost drive {found.name} turns up")
        self._expect(self._run("center", "import", str(found), "--json"), (0, 27, 41), "import")
        shutil.rmtree(found)

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def catalog_is_sound(self) -> None:
        dump = oracle.catalog_dump(self.case.archive)
        pairs = [(row[1], row[2]) for row in dump["instances"]]
        if len(pairs) != len(set(pairs)):
            self.result.duplicated += len(pairs) - len(set(pairs))
            self.result.fail(f"an instance is cataloged twice (steps: {self.steps})")
        stored = {
            sha for shas in oracle.archive_instances(self.case.archive).values() for sha in shas
        }
        if missing := {sha for _, sha in pairs} - stored:
            self.result.fail(
                f"{len(missing)} cataloged object(s) not intact in the store (steps: {self.steps})"
            )

    def teardown(self) -> None:
        try:
            if not self.result.failures:
                self._settle()
                self._final_invariant()
        finally:
            Visits.row.add(f"visits #{Visits.counter}", self.result)
            shutil.rmtree(self.root, ignore_errors=True)
        if self.result.failures:
            raise AssertionError(self.result.failures[:3])

    def _settle(self) -> None:
        self.steps.append("-- settle --")
        for _round in range(2):
            for name in DRIVES:
                if self.plugged != name:
                    if self.plugged is not None:
                        self._unplug()
                    self._plug(name)
                self.pull()
                self.import_drive(again=False)
                self.deliver()
        self.pull()

    def _final_invariant(self) -> None:
        identity = self.identity()
        on_bundles: dict[str, list[str]] = {}
        for name in DRIVES:
            folder = self._mount() if self.plugged == name else self.root / "shelf" / name
            for uid, shas in oracle.read_drive(folder, identity).objects.items():
                on_bundles.setdefault(uid, []).extend(shas)
        stored = oracle.archive_instances(self.case.archive)
        tombstoned = self._tombstoned()
        terminal = self.root / "terminal"
        for path in sorted(terminal.rglob("*.dcm")):
            rel = path.relative_to(terminal).as_posix()
            uid, sha, flagged = _instance(path)
            if not flagged:
                continue
            if (
                sha in stored.get(uid, [])
                or sha in on_bundles.get(uid, [])
                or (uid, sha) in tombstoned
            ):
                continue
            if self.skipped.get(rel, "").strip():
                continue
            self.result.lost += 1
            where = "on no valid bundle, not stored, not purged, not skipped"
            self.result.fail(f"A instance {rel} is {where} (steps: {self.steps})")
        twice = {uid: shas for uid, shas in on_bundles.items() if len(shas) > len(set(shas))}
        if twice:
            self.result.duplicated += sum(len(s) - len(set(s)) for s in twice.values())
            self.result.fail(f"{len(twice)} instance(s) carried twice (steps: {self.steps})")

    def identity(self) -> str:
        return oracle.center_identity(self.case.archive)

    def _tombstoned(self) -> set[tuple[str, str]]:
        conn = oracle.read_only(self.case.archive / "catalog.sqlite")
        try:
            rows = conn.execute("SELECT instances FROM tombstones").fetchall()
        finally:
            conn.close()
        return {(uid, sha) for (text,) in rows for uid, sha, *_ in json.loads(text)}


def _instance(path: Path) -> tuple[str, str, bool]:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return str(ds.SOPInstanceUID), sha, str(ds.AccessionNumber).startswith("A")


def run(ctx: RunContext) -> Row:
    started = time.monotonic()
    row = Row(
        "7 state machine",
        note=f"hypothesis, seed {ctx.seed}; every A instance accounted for",
        measures=frozenset({"lost", "duplicated"}),
    )
    with ctx.folder("visits") as base:
        Visits.origin = template(base / "template")
        Visits.workdir = base
        Visits.row = row
        Visits.counter = 0
        # Private, but the only way to seed a state machine run (pytest's --hypothesis-seed).
        hypothesis.core.global_force_seed = ctx.seed  # type: ignore[assignment]
        try:
            run_state_machine_as_test(
                Visits,
                settings=settings(
                    max_examples=max(3, ctx.examples // 8),
                    stateful_step_count=12,
                    deadline=None,
                    database=None,
                    phases=[
                        Phase.explicit,
                        Phase.generate,
                    ],  # no shrinking: each example costs seconds
                    suppress_health_check=list(HealthCheck),
                ),
            )
        except Exception as exc:  # noqa: BLE001 - hypothesis' report of the failing example
            row.failures.append(f"state machine (seed {ctx.seed}): {exc!r}"[:3000])
        finally:
            hypothesis.core.global_force_seed = None
    return timed(row, started)
