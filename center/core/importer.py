"""`center import`: verify, decrypt, hash-check, store and catalog the bundles on a drive.

Per bundle (DESIGN.md s4, s6): full verification without the key (signature, tag manifest,
payload) and an enrolled, active signer; then each object is decrypted into a temp file on the
archive's filesystem while hashing, its plaintext sha256 and SOP Instance UID are checked against
the index, and it is fsynced and renamed into the content-addressed store. Only then are the
catalog rows and the bundle row written, in one transaction. A crash leaves at most unreferenced
objects; running the import again completes it. Nothing is ever deleted.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from center.core import audit
from center.core.archive import Archive, CenterKeys
from center.core.devices import active_recipients, require_active
from common.bundle import format as fmt
from common.bundle.reader import IndexEntry, decrypt_object, open_index, read_reception
from common.bundle.verify import verify_bundle
from common.crypto import encrypt_bytes
from common.dicomhdr import HeaderError, read_header
from common.errors import ArchiveError, BundleDamaged, IntegrityError, NoBundles
from common.fsio import atomic_write
from common.progress import NoProgress, Progress
from common.receipts import ReceivedInstance, issuer, summarize_studies, write_receipt
from common.retention import default_expiry
from common.sqlitedb import transaction

IMPORTED, PARTIAL, ALREADY, UNSEALED, REFUSED = (
    "imported",
    "partial",
    "already-imported",
    "unsealed",
    "refused",
)


@dataclass
class BundleOutcome:
    bundle_id: str
    status: str
    facility_id: str = ""
    device_id: str = ""
    objects: int = 0
    stored: int = 0
    already_stored: int = 0
    studies: int = 0
    reason: str = ""
    error_ref: str = ""
    receipt: Path | None = None
    outbox: list[Path] = field(default_factory=list)


@dataclass
class ImportReport:
    drive: Path
    outcomes: list[BundleOutcome]


def import_drive(
    archive: Archive,
    keys: CenterKeys,
    drive_root: Path,
    *,
    operator: str,
    now: datetime,
    only_bundle: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import every sealed, not yet imported bundle on *drive_root* (or just *only_bundle*)."""
    progress = progress or NoProgress()
    bundles_root = drive_root / fmt.BUNDLES_DIR
    candidates = (
        sorted(p for p in bundles_root.iterdir() if p.is_dir()) if (bundles_root.is_dir()) else []
    )
    if only_bundle is not None:
        candidates = [p for p in candidates if p.name == only_bundle]
    if not candidates:
        what = f"bundle {only_bundle}" if only_bundle else "no bundles"
        raise NoBundles(f"{drive_root} holds {what} to import")
    outcomes = []
    for bundle_dir in candidates:
        try:
            outcome = _import_bundle(archive, keys, bundle_dir, operator, now, progress)
        except ArchiveError as exc:
            outcome = BundleOutcome(bundle_dir.name, REFUSED, reason=exc.message, error_ref=exc.ref)
        outcomes.append(outcome)
    return ImportReport(drive_root, outcomes)


def _import_bundle(
    archive: Archive,
    keys: CenterKeys,
    bundle_dir: Path,
    operator: str,
    now: datetime,
    progress: Progress,
) -> BundleOutcome:
    bundle_id = bundle_dir.name
    if archive.conn.execute("SELECT 1 FROM bundles WHERE bundle_id = ?", (bundle_id,)).fetchone():
        return BundleOutcome(bundle_id, ALREADY, reason="imported before; nothing to do")
    progress.phase(f"verify {bundle_id}", None, unit="bytes")
    report = verify_bundle(bundle_dir, on_object=lambda n: progress.advance(0, nbytes=n))
    if not report.sealed:
        return BundleOutcome(
            bundle_id, UNSEALED, reason="not sealed: the courier's pull did not finish"
        )
    if report.defects or report.info is None:
        named = "; ".join(d.describe() for d in report.defects[:5])
        more = f" and {len(report.defects) - 5} more" if len(report.defects) > 5 else ""
        raise BundleDamaged(f"bundle {bundle_id} failed verification: {named}{more}")
    info = report.info
    device = require_active(archive, info.device_fingerprint)
    if device.device_id != info.device_id:
        raise BundleDamaged(
            f"bundle {bundle_id} names device {info.device_id} but is signed by {device.device_id}"
        )
    reception = read_reception(bundle_dir, keys.identity)
    received = str(reception.get("received", info.created))
    outcome = BundleOutcome(bundle_id, IMPORTED, info.facility_id, info.device_id)
    stored: list[tuple[IndexEntry, bool]] = []
    with open_index(bundle_dir, keys.identity, info) as index:
        progress.phase(f"import {bundle_id}", info.object_count)
        for entry in index:
            is_new = _store_object(archive, keys, bundle_dir, entry)
            stored.append((entry, is_new))
            progress.advance(1, nbytes=entry.size)
    if len(stored) != info.object_count:
        raise BundleDamaged(
            f"bundle {bundle_id}: index lists {len(stored)} objects, bag-info {info.object_count}"
        )
    outcome.objects = len(stored)
    outcome.stored = sum(1 for _, new in stored if new)
    outcome.already_stored = outcome.objects - outcome.stored
    reception_date = _date_of(received, now)
    with transaction(archive.conn):
        outcome.studies = _catalog(archive, info, stored, reception, reception_date, operator, now)
        audit.record(
            archive.conn,
            at=now,
            operator=operator,
            action="import",
            event_code=audit.EVENT_IMPORT,
            target=f"bundle:{bundle_id}",
            details={
                "facility_id": info.facility_id,
                "device_id": info.device_id,
                "objects": outcome.objects,
                "new_objects": outcome.stored,
                "studies": outcome.studies,
            },
        )
        checkpoint = audit.checkpoint(archive.conn, keys.signing_seed, now)
    _write_receipts(
        archive, keys, bundle_dir.parent.parent, outcome, [e for e, _ in stored], now, checkpoint
    )
    return outcome


def _date_of(text: str, fallback: datetime) -> date:
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        return fallback.date()


def _store_object(archive: Archive, keys: CenterKeys, bundle_dir: Path, entry: IndexEntry) -> bool:
    """Decrypt, check and store one object; True if it was not in the store before."""
    if archive.store.exists(entry.sha256):
        return False
    tmp = archive.paths.tmp / f"{secrets.token_hex(8)}.tmp-partial"
    try:
        with tmp.open("wb") as fh:
            digest = decrypt_object(bundle_dir, entry, keys.identity, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if digest != entry.sha256:
            raise IntegrityError(
                f"object {entry.path} decrypts to other bytes than the index "
                "promises (sha256 mismatch)"
            )
        try:
            uid = read_header(tmp).sop_instance_uid
        except HeaderError as exc:
            raise IntegrityError(
                f"object {entry.path} is not readable DICOM: {exc.reason}"
            ) from exc
        if uid != entry.header.sop_instance_uid:
            raise IntegrityError(
                f"object {entry.path} holds another instance than the index "
                "names (SOP Instance UID mismatch)"
            )
        return archive.store.put_file(tmp, entry.sha256)
    finally:
        tmp.unlink(missing_ok=True)


def _catalog(
    archive: Archive,
    info: fmt.BagInfo,
    stored: list[tuple[IndexEntry, bool]],
    reception: dict[str, Any],
    reception_date: date,
    operator: str,
    now: datetime,
) -> int:
    conn = archive.conn
    conn.execute(
        "INSERT OR IGNORE INTO facilities (facility_id, created) VALUES (?, ?)",
        (info.facility_id, now.isoformat(timespec="seconds")),
    )
    conn.execute(
        "INSERT INTO bundles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            info.bundle_id,
            info.device_id,
            info.facility_id,
            info.created,
            now.isoformat(timespec="seconds"),
            operator,
            IMPORTED,
            info.object_count,
            len(stored),
            str(reception.get("operator", "")),
            reception_date.isoformat(),
            json.dumps(reception, sort_keys=True),
        ),
    )
    studies: set[int] = set()
    for entry, _ in stored:
        h = entry.header
        conn.execute(
            "INSERT INTO patients (facility_id, patient_id, patient_name, birth_date, sex) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (facility_id, patient_id) DO NOTHING",
            (info.facility_id, h.patient_id, h.patient_name, h.birth_date, h.sex),
        )
        patient_pk = conn.execute(
            "SELECT patient_pk FROM patients WHERE facility_id = ? AND patient_id = ?",
            (info.facility_id, h.patient_id),
        ).fetchone()[0]
        expiry = default_expiry(h.study_date, h.birth_date, reception_date)
        conn.execute(
            "INSERT INTO studies (facility_id, patient_pk, study_instance_uid, accession, "
            "study_id, study_date, study_time, description, modalities, body_part, "
            "first_received, expiry, expiry_rule, expiry_anchor, study_date_flagged) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (facility_id, study_instance_uid) DO NOTHING",
            (
                info.facility_id,
                patient_pk,
                h.study_instance_uid,
                h.accession,
                h.study_id,
                h.study_date,
                h.study_time,
                h.study_description,
                h.modality,
                h.body_part,
                reception_date.isoformat(),
                expiry.expires.isoformat(),
                expiry.rule,
                expiry.anchor,
                int(expiry.study_date_flagged),
            ),
        )
        study_pk, modalities = conn.execute(
            "SELECT study_pk, modalities FROM studies WHERE facility_id = ? "
            "AND study_instance_uid = ?",
            (info.facility_id, h.study_instance_uid),
        ).fetchone()
        if h.modality and h.modality not in modalities.split("/"):
            merged = "/".join(sorted({*modalities.split("/"), h.modality} - {""}))
            conn.execute("UPDATE studies SET modalities = ? WHERE study_pk = ?", (merged, study_pk))
        studies.add(study_pk)
        conn.execute(
            "INSERT INTO series (study_pk, series_instance_uid, modality, description) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (study_pk, series_instance_uid) DO NOTHING",
            (study_pk, h.series_instance_uid, h.modality, h.series_description),
        )
        series_pk = conn.execute(
            "SELECT series_pk FROM series WHERE study_pk = ? AND series_instance_uid = ?",
            (study_pk, h.series_instance_uid),
        ).fetchone()[0]
        conflict = (
            conn.execute(
                "SELECT 1 FROM instances WHERE sop_instance_uid = ? AND sha256 != ?",
                (h.sop_instance_uid, entry.sha256),
            ).fetchone()
            is not None
        )
        conn.execute(
            "INSERT INTO instances (series_pk, sop_instance_uid, sop_class_uid, "
            "transfer_syntax_uid, sha256, size, bundle_id, bundle_seq, source_relpath, "
            "received, conflict) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (sop_instance_uid, sha256) DO NOTHING",
            (
                series_pk,
                h.sop_instance_uid,
                h.sop_class_uid,
                h.transfer_syntax_uid,
                entry.sha256,
                entry.size,
                info.bundle_id,
                entry.seq,
                entry.source_relpath,
                reception_date.isoformat(),
                int(conflict),
            ),
        )
    return len(studies)


def _write_receipts(
    archive: Archive,
    keys: CenterKeys,
    drive_root: Path,
    outcome: BundleOutcome,
    entries: list[IndexEntry],
    now: datetime,
    checkpoint: audit.Checkpoint | None,
) -> None:
    """Storage receipt for the bundle's facility: kept in the archive, encrypted to the outbox.

    It lists exactly the instances of this bundle that are now in the store.
    """
    received = [ReceivedInstance(e.header, e.sha256, e.size) for e in entries]
    studies = summarize_studies(received)
    for study in studies:
        row = archive.conn.execute(
            "SELECT expiry FROM studies WHERE facility_id = ? AND study_instance_uid = ?",
            (outcome.facility_id, study["study_instance_uid"]),
        ).fetchone()
        study["expiry"] = row["expiry"]
    document = {
        "kind": "storage-receipt",
        "version": 1,
        "receipt_id": f"storage-{outcome.bundle_id}",
        "issued": now.isoformat(timespec="seconds"),
        "facility_id": outcome.facility_id,
        "bundle_id": outcome.bundle_id,
        "issuer": issuer("center", archive.card.center_name, archive.card.signing_public),
        "studies": studies,
        "totals": {
            "studies": len(studies),
            "instances": len(received),
            "bytes": sum(r.size for r in received),
        },
    }
    if checkpoint is not None:
        document["audit_checkpoint"] = checkpoint.to_dict()
    files = write_receipt(
        archive.paths.receipts / outcome.facility_id,
        document,
        keys.signing_seed,
        title="Storage receipt",
    )
    outcome.receipt = files.html
    recipients = active_recipients(archive)
    outbox = drive_root / fmt.OUTBOX_DIR / outcome.facility_id
    outbox.mkdir(parents=True, exist_ok=True)
    for path in (files.json, files.signature, files.html):
        target = outbox / f"{path.name}.age"
        atomic_write(target, encrypt_bytes(path.read_bytes(), recipients))
        outcome.outbox.append(target)
