"""`center import` killed at many points, or out of disk, then run again: nothing lost or doubled.

The drive holds two bundles of two facilities, one with a damaged object (imported partially,
with a quarantine). An uninterrupted import gives the reference. The same import is counted
in-process (write, fsync, rename operations, as tests/faultinject.py counts them), then run in
a child process killed (SIGKILL) at 24 points spread over those operations, or given ENOSPC;
each time a normal re-run must end with the catalog (rows without timestamps and generated
ids) and the store identical to the reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from center.cli.app import app
from center.core.archive import open_archive
from center.core.devices import enroll
from center.core.store import ObjectStore
from common.bundle import format as fmt
from examples.clinic_terminal import TerminalSpec, generate_terminal
from tests import fileops
from tests.center.intake.kit import copy_tree, init_drive, new_device, write_bundle
from tests.conftest import CENTER_PASS, NOW, add_test_operator

ROOT = Path(__file__).resolve().parent.parent.parent
KILL_POINTS = 24
PARTIAL_EXIT = 41


@dataclass
class Pristine:
    root: Path
    env: dict[str, str]
    reference: dict[str, Any]
    objects: set[str]
    ops: list[str]  # the counted operations of an uninterrupted import, in order
    paths: list[str]  # the file each of them touched
    after_put: list[int]  # renames (replace ops) done right after each object entered the store


def _env(archive: Path, operator: dict[str, str]) -> dict[str, str]:
    return {
        "CENTER_ARCHIVE": str(archive),
        "CENTER_PASSPHRASE": CENTER_PASS,
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
        "NO_COLOR": "1",
        "COLUMNS": "160",
        **operator,
    }


def _import(env: dict[str, str], drive: Path, *, rerun: bool = False) -> Result:
    """The import; a first run ends partial (41), a re-run may find all done already (0)."""
    result = CliRunner().invoke(app, ["import", str(drive), "--json"], env=env)
    assert result.exit_code in ((0, PARTIAL_EXIT) if rerun else (PARTIAL_EXIT,)), result.output
    return result


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys}


def catalog_dump(archive: Path) -> dict[str, Any]:
    """The catalog's rows by natural keys, without timestamps, generated ids or signatures."""
    conn = sqlite3.connect(archive / "catalog.sqlite")

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in conn.execute(sql))

    dump: dict[str, Any] = {
        "facilities": rows("SELECT facility_id, name FROM facilities"),
        "devices": rows("SELECT device_id, fingerprint, status FROM devices"),
        "bundles": rows(
            "SELECT bundle_id, device_id, facility_id, created, imported_by, status, "
            "object_count, stored_count, reception_operator, reception_date, reception "
            "FROM bundles"
        ),
        "bundle_seals": rows("SELECT * FROM bundle_seals"),
        "patients": rows("SELECT facility_id, patient_id, patient_name, birth_date FROM patients"),
        "studies": rows(
            "SELECT facility_id, study_instance_uid, accession, study_date, modalities, "
            "first_received, expiry, expiry_rule FROM studies"
        ),
        "series": rows(
            "SELECT st.study_instance_uid, se.series_instance_uid, se.modality FROM series se "
            "JOIN studies st USING (study_pk)"
        ),
        "instances": rows(
            "SELECT se.series_instance_uid, i.sop_instance_uid, i.sha256, i.size, i.bundle_id, "
            "i.bundle_seq, i.conflict FROM instances i JOIN series se USING (series_pk)"
        ),
        "quarantine": rows("SELECT bundle_id, item, seq, reason, kept FROM quarantine"),
        "receipts": sorted(
            (r[0], r[1], json.dumps(_without(json.loads(r[2]), "issued", "audit_checkpoint")))
            for r in conn.execute(
                "SELECT receipt_id, files_written, document FROM storage_receipts"
            )
        ),
        "promises": rows("SELECT receipt_id, study_instance_uid, expiry FROM receipt_promises"),
        "outbox": rows("SELECT document_id, facility_id, kind, delivered_at FROM outbox_documents"),
        "pushes": rows("SELECT document_id, volume_id, recipients_sha256 FROM outbox_pushes"),
        "courier_checkpoints": rows("SELECT * FROM courier_checkpoints"),
        "audit": sorted(
            set(rows("SELECT operator, action, event_code, target, outcome, details FROM audit"))
        ),
        "imports_recorded": rows(
            "SELECT target, COUNT(*) FROM audit WHERE action = 'import' GROUP BY target"
        ),
    }
    conn.close()
    return dump


def _drive_state(drive: Path) -> list[str]:
    outbox = drive / fmt.OUTBOX_DIR
    return sorted(p.relative_to(drive).as_posix() for p in outbox.rglob("*") if p.is_file())


def _count(env: dict[str, str], drive: Path) -> tuple[list[str], list[str], list[int]]:
    """Run the import in-process, listing the operations tests/faultinject.py counts (their
    kinds, and the files they touched)."""
    ops: list[str] = []
    paths: list[str] = []
    after_put: list[int] = []
    real_place = ObjectStore.place

    def place(store: ObjectStore, tmp: Path, sha256: str) -> list[Path]:
        changed = real_place(store, tmp, sha256)
        after_put.append(ops.count("replace"))
        return changed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ObjectStore, "place", place)
        undo = fileops.install(lambda kind, path: (ops.append(kind), paths.append(path)))
        try:
            _import(env, drive)
        finally:
            undo()
    return ops, paths, after_put


@pytest.fixture(scope="module")
def pristine(center_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    root = tmp_path_factory.mktemp("crash")
    terminal = root / "terminal"
    manifest = generate_terminal(
        terminal,
        TerminalSpec(seed=5, patients=2, studies=3, instances_per_series=(1, 2), pixel_bytes=2048),
    )
    files = [terminal / i.path for s in manifest.studies for i in s.instances]
    archive = copy_tree(center_template, root / "pristine" / "archive")
    device = new_device()
    with open_archive(archive) as opened:
        enroll(opened, device.card(), operator="Enroller", now=NOW)
        recipients = opened.card.recipients
    operator = add_test_operator(archive, "Crash Tester")
    drive = init_drive(root / "pristine" / "drive")
    write_bundle(drive, device, recipients, files[: len(files) // 2], facility="clinic-a")
    second = write_bundle(
        drive,
        device,
        recipients,
        files[len(files) // 2 :],
        facility="clinic-b",
        now=NOW + timedelta(hours=2),
    )
    damaged = second / fmt.object_relpath(1)
    damaged.write_bytes(damaged.read_bytes()[:-7] + b"damaged")
    reference = copy_tree(root / "pristine", root / "reference")
    _import(_env(reference / "archive", operator), reference / "drive")
    counting = copy_tree(root / "pristine", root / "counting")
    ops, paths, after_put = _count(_env(counting / "archive", operator), counting / "drive")
    assert catalog_dump(counting / "archive") == catalog_dump(reference / "archive")
    return Pristine(
        root / "pristine",
        operator,
        {
            "catalog": catalog_dump(reference / "archive"),
            "drive": _drive_state(reference / "drive"),
        },
        set(ObjectStore(reference / "archive" / "objects")),
        ops,
        paths,
        after_put,
    )


def _child(
    pristine: Pristine, where: Path, n: int, fault: str, ops: str
) -> subprocess.Popen[bytes]:
    copy_tree(pristine.root, where)
    env = {**os.environ, **_env(where / "archive", pristine.env)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faultinject", str(n), fault, ops, "center", "import",
         str(where / "drive")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def kill_points(total: int) -> list[int]:
    """KILL_POINTS operation numbers spread evenly from the first to the last."""
    return sorted({1 + round(i * (total - 1) / (KILL_POINTS - 1)) for i in range(KILL_POINTS)})


@pytest.fixture(scope="module")
def killed(
    pristine: Pristine, tmp_path_factory: pytest.TempPathFactory
) -> dict[int, tuple[Path, int]]:
    """Every kill point run in a child (two at a time): its folder and exit status."""
    points = kill_points(len(pristine.ops))
    assert len(points) == KILL_POINTS
    base = tmp_path_factory.mktemp("killed")
    done: dict[int, tuple[Path, int]] = {}
    running: list[tuple[int, Path, subprocess.Popen[bytes]]] = []
    for n in points:
        where = base / f"n{n}"
        running.append((n, where, _child(pristine, where, n, "kill", "write,fsync,replace")))
        if len(running) >= (os.cpu_count() or 2):
            m, folder, child = running.pop(0)
            done[m] = (folder, child.wait())
    for m, folder, child in running:
        done[m] = (folder, child.wait())
    return done


def _assert_like_reference(pristine: Pristine, where: Path, *, besides: str = "") -> None:
    """Catalog, store and drive outbox as after the uninterrupted import (audit entries of the
    action *besides*, run in between, aside)."""
    dump = catalog_dump(where / "archive")
    dump["audit"] = [entry for entry in dump["audit"] if entry[1] != besides]
    assert dump == pristine.reference["catalog"]
    assert set(ObjectStore(where / "archive" / "objects")) == pristine.objects
    assert _drive_state(where / "drive") == pristine.reference["drive"]
    assert len(list((where / "archive" / "quarantine").rglob("report.json"))) == 1


def test_there_are_enough_operations_to_spread_the_kills(pristine: Pristine) -> None:
    """The import counts well over KILL_POINTS operations, of every counted kind."""
    assert len(pristine.ops) > 2 * KILL_POINTS
    assert {"write", "fsync", "replace"} <= set(pristine.ops)


@pytest.mark.parametrize("point", range(KILL_POINTS))
def test_killed_import_completes_on_rerun(
    pristine: Pristine, killed: dict[int, tuple[Path, int]], point: int
) -> None:
    """Killed at this point, the import run again ends identical to an uninterrupted one."""
    n = kill_points(len(pristine.ops))[point]
    where, status = killed[n]
    assert status == -9, f"the child was not killed at operation {n}"
    _import(_env(where / "archive", pristine.env), where / "drive", rerun=True)
    _assert_like_reference(pristine, where)


def test_crash_leaves_orphans_that_check_reports(pristine: Pristine, tmp_path: Path) -> None:
    """Killed after three objects were stored: check reports them as orphans until the re-run."""
    n = pristine.after_put[2] + 1  # the fourth object's rename (renames are made in order)
    child = _child(pristine, tmp_path / "run", n, "kill", "replace")
    assert child.wait() == -9
    env = _env(tmp_path / "run" / "archive", pristine.env)
    check = CliRunner().invoke(app, ["check", "--json"], env=env)
    assert check.exit_code == 44, check.output
    kinds = [f["kind"] for f in json.loads(check.stdout)["findings"]]
    assert kinds == ["orphan-object"] * 3
    _import(env, tmp_path / "run" / "drive")
    assert CliRunner().invoke(app, ["check"], env=env).exit_code == 0
    _assert_like_reference(pristine, tmp_path / "run", besides="check")


def test_full_archive_disk_is_a_clear_error_and_keeps_what_was_stored(
    pristine: Pristine, tmp_path: Path
) -> None:
    """ENOSPC while the second bundle's last object is written: archive-disk-full, no traceback,
    the first bundle untouched; after freeing space the same import completes."""
    object_writes = [
        n
        for n, (op, path) in enumerate(zip(pristine.ops, pristine.paths, strict=True), start=1)
        if op == "write" and "/archive/tmp/" in path and path.endswith(".tmp-partial")
    ]  # an object is written to the archive's tmp/, then renamed into objects/
    writes = pristine.ops[: object_writes[-1]].count("write")
    child = _child(pristine, tmp_path / "run", writes, "enospc", "write")
    _, stderr = child.communicate()
    text = stderr.decode()
    assert child.returncode == 40, text
    assert "archive-disk-full" in text and "Traceback" not in text
    dump = catalog_dump(tmp_path / "run" / "archive")
    assert [b[2] for b in dump["bundles"]] == ["clinic-a"]
    reference_a = [
        i for i in pristine.reference["catalog"]["instances"] if i[4] == dump["bundles"][0][0]
    ]
    assert dump["instances"] == reference_a
    store = ObjectStore(tmp_path / "run" / "archive" / "objects")
    for row in reference_a:
        assert hashlib.sha256(store.path(row[2]).read_bytes()).hexdigest() == row[2]
    _import(_env(tmp_path / "run" / "archive", pristine.env), tmp_path / "run" / "drive")
    _assert_like_reference(pristine, tmp_path / "run")


def test_a_full_disk_while_spooling_the_index_is_not_blamed_on_the_bundle(
    pristine: Pristine, tmp_path: Path
) -> None:
    """ENOSPC writing the decrypted index to the archive's spool: archive-disk-full, not
    bundle-wrong-center; no bundle refused in the audit log; the same import then completes."""
    spool_writes = [
        n
        for n, (op, path) in enumerate(zip(pristine.ops, pristine.paths, strict=True), start=1)
        if op == "write" and "/archive/tmp/" in path and path.endswith("(deleted)")
    ]  # the spool is an unlinked temporary file in the archive's tmp/
    assert spool_writes
    writes = pristine.ops[: spool_writes[0]].count("write")
    child = _child(pristine, tmp_path / "run", writes, "enospc", "write")
    _, stderr = child.communicate()
    text = stderr.decode()
    assert child.returncode == 40, text
    assert "archive-disk-full" in text and "wrong-center" not in text
    dump = catalog_dump(tmp_path / "run" / "archive")
    assert not [entry for entry in dump["audit"] if "refused" in entry]
    _import(_env(tmp_path / "run" / "archive", pristine.env), tmp_path / "run" / "drive")
    _assert_like_reference(pristine, tmp_path / "run")
