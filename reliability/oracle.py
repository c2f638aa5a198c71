"""What a trial's end state holds, read independently of the code under test's own reports.

Drives are read with the bundle format's keyless verifier and the center's key (every object
decrypted, hashed and its header re-read); archives through their catalog file and object store.
A trial compares these with what the terminal holds or with an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from center.core.archive import open_archive
from center.core.store import ObjectStore
from common.bundle import format as fmt
from common.bundle.reader import decrypt_object, open_index
from common.bundle.verify import verify_bundle
from common.dicomhdr import read_header
from common.fsio import TEMP_SUFFIX
from reliability.world import CENTER_PASS


def center_identity(archive: Path) -> str:
    """The center's age identity (all copies of a template archive share it)."""
    with open_archive(archive) as opened:
        return opened.unlock(CENTER_PASS).identity


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class DriveContents:
    """Every bundle folder of a drive, sorted into sealed-and-valid, unsealed and bad."""

    objects: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # uid: shas
    sealed: list[str] = field(default_factory=list)
    unsealed: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)  # sealed yet invalid: never acceptable

    def problems(self) -> list[str]:
        return [f"sealed bundle that does not verify: {b}" for b in self.bad]


def read_drive(drive: Path, identity: str) -> DriveContents:
    """Verify every bundle on *drive* and decrypt the objects of each sealed, valid one."""
    contents = DriveContents()
    folder = drive / fmt.BUNDLES_DIR
    for bundle in sorted(folder.iterdir()) if folder.is_dir() else []:
        report = verify_bundle(bundle)
        if not report.sealed:
            contents.unsealed.append(bundle.name)
            continue
        if not report.valid or report.info is None:
            detail = "; ".join(d.describe() for d in report.defects)
            contents.bad.append(f"{bundle.name} ({detail})")
            continue
        try:
            with open_index(bundle, identity, report.info, spool_dir=bundle.parent) as index:
                for entry in index:
                    sink = io.BytesIO()
                    got = decrypt_object(bundle, entry, identity, sink)
                    header = read_header(io.BytesIO(sink.getvalue()))
                    if (
                        got != entry.sha256
                        or header.sop_instance_uid != entry.header.sop_instance_uid
                    ):
                        contents.bad.append(f"{bundle.name}: object {entry.seq} is not its entry")
                        continue
                    contents.objects[header.sop_instance_uid].append(got)
        except Exception as exc:  # noqa: BLE001 - the oracle reports any failure as a finding
            contents.bad.append(f"{bundle.name}: cannot be read with the center key ({exc!r})")
        contents.sealed.append(bundle.name)
    return contents


@dataclass(frozen=True)
class Accounting:
    lost: list[str]
    duplicated: list[str]
    altered: list[str]

    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.altered)

    def describe(self) -> str:
        parts = []
        for name, items in (("lost", self.lost), ("duplicated", self.duplicated),
                            ("altered", self.altered)):  # fmt: skip
            if items:
                parts.append(f"{len(items)} {name}")
        return ", ".join(parts) or "complete"


def account(expected: dict[str, bytes], found: dict[str, list[str]]) -> Accounting:
    """Compare instances *found* (uid: sha256 of each copy) with the *expected* bytes."""
    lost = sorted(uid for uid in expected if uid not in found)
    duplicated = sorted(uid for uid, copies in found.items() if len(copies) > 1)
    altered = sorted(
        uid
        for uid, copies in found.items()
        if uid in expected and any(c != sha(expected[uid]) for c in copies)
    )
    altered += sorted(uid for uid in found if uid not in expected)
    return Accounting(lost, duplicated, altered)


def account_shas(expected: dict[str, list[str]], found: dict[str, list[str]]) -> Accounting:
    """Compare two archives' instances (uid: sha256 of each copy)."""
    lost = sorted(uid for uid, shas in expected.items() if not set(shas) <= set(found.get(uid, [])))
    duplicated = sorted(
        uid for uid, shas in found.items() if len(shas) > len(expected.get(uid, [])) >= 1
    )
    altered = sorted(
        uid for uid, shas in found.items() if not set(shas) <= set(expected.get(uid, []))
    )
    return Accounting(lost, duplicated, altered)


def temp_files(*roots: Path) -> list[str]:
    return sorted(str(p) for root in roots if root.exists() for p in root.rglob(f"*{TEMP_SUFFIX}"))


def read_only(database: Path) -> sqlite3.Connection:
    """Open an SQLite file read-only (the path quoted: it may hold URI characters)."""
    return sqlite3.connect(f"file:{quote(str(database.resolve()))}?mode=ro", uri=True)


def archive_instances(archive: Path) -> dict[str, list[str]]:
    """SOP Instance UID -> sha256 of each cataloged copy whose bytes are in the store intact."""
    store = ObjectStore(archive / "objects")
    conn = read_only(archive / "catalog.sqlite")
    found: dict[str, list[str]] = defaultdict(list)
    try:
        for uid, digest in conn.execute("SELECT sop_instance_uid, sha256 FROM instances"):
            path = store.path(digest)
            if path.is_file() and sha(path.read_bytes()) == digest:
                found[uid].append(digest)
    finally:
        conn.close()
    return found


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys}


def catalog_dump(archive: Path) -> dict[str, Any]:
    """The catalog's rows by natural keys, without timestamps, generated ids or signatures."""
    conn = read_only(archive / "catalog.sqlite")

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in conn.execute(sql))

    try:
        return {
            "facilities": rows("SELECT facility_id FROM facilities"),
            "devices": rows("SELECT device_id, fingerprint, status FROM devices"),
            "bundles": rows(
                "SELECT bundle_id, device_id, facility_id, created, status, object_count, "
                "stored_count, reception_operator, reception FROM bundles"
            ),
            "patients": rows(
                "SELECT facility_id, patient_id, patient_name, birth_date FROM patients"
            ),
            "studies": rows(
                "SELECT facility_id, study_instance_uid, accession, study_date, modalities, "
                "expiry, expiry_rule FROM studies"
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
                (r[0], json.dumps(_without(json.loads(r[1]), "issued", "audit_checkpoint")))
                for r in conn.execute("SELECT receipt_id, document FROM storage_receipts")
            ),
            "promises": rows("SELECT receipt_id, study_instance_uid, expiry FROM receipt_promises"),
            "outbox": rows(
                "SELECT document_id, facility_id, kind, delivered_at IS NOT NULL "
                "FROM outbox_documents"
            ),
            "courier_checkpoints": rows("SELECT * FROM courier_checkpoints"),
            "imports_audited": rows(
                "SELECT target, outcome, COUNT(*) FROM audit WHERE action = 'import' "
                "GROUP BY target, outcome"
            ),
        }
    finally:
        conn.close()


def store_objects(archive: Path) -> set[str]:
    return set(ObjectStore(archive / "objects"))


def outbox_files(drive: Path) -> list[str]:
    outbox = drive / fmt.OUTBOX_DIR
    return sorted(p.relative_to(drive).as_posix() for p in outbox.rglob("*") if p.is_file())


def dump_diff(got: dict[str, Any], want: dict[str, Any]) -> str:
    """The tables that differ, shortly (for a failure message)."""
    return ", ".join(
        f"{key} ({len(got.get(key, []))} rows, {len(want.get(key, []))} expected)"
        for key in sorted(set(got) | set(want))
        if got.get(key) != want.get(key)
    )
