"""Delivering the center's documents to the clinic (contracts C1, C2 and C3).

The center leaves signed documents (storage receipts, expiry notices) in the drive's
``outbox/<facility>/`` as ``<document-id>.json.age``, ``.json.sig.age`` and ``.html.age``,
encrypted to every enrolled courier device. For each complete document this module:

1. decrypts the three files with the device's age identity;
2. checks that the JSON is canonical, names this document and facility, and is signed by the
   center whose card this laptop pinned -- otherwise the document is refused (a security
   problem: it is left on the drive and never shown to the clinic);
3. writes the three files into the clinic's receipts folder, atomically;
4. for a storage receipt, marks each listed (SOP Instance UID, sha256) as confirmed stored in
   the journal, so those instances are never pulled again, and releases the bundle's other
   objects (the center quarantined them), so the next pull takes them again;
5. writes a delivery confirmation signed by the device on the drive
   (``returns/<facility>/delivery-<id>.json`` and ``.json.sig``) for the center;
6. removes the delivered ``.age`` files from the outbox.

Every step can be repeated: an interruption anywhere is completed by the next delivery.
"""

from __future__ import annotations

import base64
import errno
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from common.bundle import format as fmt
from common.canonical import canonical_json
from common.crypto import decrypt_bytes, fingerprint, sign
from common.errors import DecryptError, DriveError
from common.fsio import TEMP_SUFFIX, atomic_write, fsync_dir
from common.receipts import SIGNATURE_CONTEXT, verify_receipt
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.journal import Journal
from courier.core.reception import ReceiptOutcome, deliver_pending

RETURNS_DIR = "returns"
PARTS = (".json", ".json.sig", ".html")
CONFIRMATION_KIND = "delivery-confirmation"


@dataclass(frozen=True)
class Delivered:
    document_id: str
    kind: str
    files: tuple[Path, ...]
    confirmed_instances: int


@dataclass(frozen=True)
class NotDelivered:
    document_id: str
    reason: str
    refused: bool = False  # True: a security problem (bad signature, wrong facility ...)


@dataclass
class DeliveryReport:
    facility_id: str
    receipts_dir: Path | None
    delivered: list[Delivered] = field(default_factory=list)
    left: list[NotDelivered] = field(default_factory=list)

    @property
    def refused(self) -> list[NotDelivered]:
        return [item for item in self.left if item.refused]


def _documents(folder: Path) -> dict[str, dict[str, Path]]:
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.glob("*.age")):
        name = path.name.removesuffix(".age")
        for part in sorted(PARTS, key=len, reverse=True):
            if name.endswith(part):
                found.setdefault(name.removesuffix(part), {})[part] = path
                break
    return found


def deliver_outbox(
    unlocked: UnlockedDevice,
    journal: Journal,
    drive: Drive,
    facility_id: str,
    receipts_dir: Path | None,
    now: datetime,
) -> DeliveryReport:
    """Deliver every complete, authentic document waiting for *facility_id* on the drive."""
    report = DeliveryReport(facility_id, receipts_dir)
    folder = drive.outbox(facility_id)
    if not folder.is_dir():
        return report
    for document_id, parts in _documents(folder).items():
        missing = [p for p in PARTS if p not in parts]
        if missing:
            report.left.append(NotDelivered(document_id, f"incomplete: no {missing[0]} file"))
            continue
        try:
            plain = {
                part: decrypt_bytes(path.read_bytes(), unlocked.age_identity)
                for part, path in parts.items()
            }
        except DecryptError:
            report.left.append(
                NotDelivered(document_id, "not encrypted to this device (another courier's)")
            )
            continue
        problem = _check(unlocked, plain, document_id, facility_id)
        if problem:
            report.left.append(NotDelivered(document_id, problem, refused=True))
            continue
        if receipts_dir is None:
            report.left.append(NotDelivered(document_id, "no receipts folder for this clinic"))
            continue
        try:
            report.delivered.append(
                _deliver(
                    unlocked,
                    journal,
                    drive,
                    facility_id,
                    receipts_dir,
                    document_id,
                    plain,
                    parts,
                    now,
                )
            )
        except _ClinicFolderError as exc:  # the document waits on the drive for the next visit
            reason = exc.__cause__.strerror if isinstance(exc.__cause__, OSError) else None
            report.left.append(
                NotDelivered(
                    document_id, f"the clinic's folder {receipts_dir} cannot take it ({reason})"
                )
            )
        except PermissionError:
            report.left.append(
                NotDelivered(document_id, f"the clinic's folder {receipts_dir} is not writable")
            )
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES):
                report.left.append(
                    NotDelivered(document_id, f"the clinic's folder {receipts_dir} is read-only")
                )
                continue
            raise DriveError(
                f"delivering document {document_id} failed: {exc.strerror}",
                hint="Check the drive and the clinic's folder, then run `courier deliver` again.",
            ) from exc
    return report


def _check(
    unlocked: UnlockedDevice, plain: dict[str, bytes], document_id: str, facility_id: str
) -> str:
    """Why the document must not be delivered ('' when it is authentic and addressed here)."""
    body = plain[".json"]
    try:
        doc = json.loads(body)
    except ValueError:
        return "its JSON is not valid"
    if not isinstance(doc, dict) or canonical_json(doc) != body:
        return "its JSON is not in canonical form"
    if not verify_receipt(body, plain[".json.sig"], unlocked.device.center.signing_public):
        return "its signature does not verify with the center key this laptop trusts"
    if doc.get("receipt_id") != document_id:
        return "it names another document id than its file name"
    if doc.get("facility_id") != facility_id:
        return f"it is addressed to facility {doc.get('facility_id')!r}, not {facility_id}"
    return ""


def remove_temp_files_in(folder: Path) -> None:
    """Our temporary files left in *folder* (not below it) by an interrupted write."""
    for stale in folder.glob(f".*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


def storage_pairs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The (SOP Instance UID, sha256) pairs a storage receipt confirms (contract C3)."""
    if doc.get("kind") != "storage-receipt":
        return []
    pairs = []
    for study in doc.get("studies", []):
        for item in study.get("instances", []) if isinstance(study, dict) else []:
            if isinstance(item, dict) and "sop_instance_uid" in item and "sha256" in item:
                pairs.append((str(item["sop_instance_uid"]), str(item["sha256"])))
    return pairs


class _ClinicFolderError(Exception):
    """Writing into the clinic's receipts folder failed (the cause is the OSError)."""


def _deliver(
    unlocked: UnlockedDevice,
    journal: Journal,
    drive: Drive,
    facility_id: str,
    receipts_dir: Path,
    document_id: str,
    plain: dict[str, bytes],
    parts: dict[str, Path],
    now: datetime,
) -> Delivered:
    written = []
    try:
        receipts_dir.mkdir(parents=True, exist_ok=True)
        remove_temp_files_in(receipts_dir)
        for part in PARTS:
            target = receipts_dir / f"{document_id}{part}"
            atomic_write(target, plain[part])
            written.append(target)
    except OSError as exc:
        raise _ClinicFolderError from exc
    doc = json.loads(plain[".json"])
    at = now.isoformat(timespec="seconds")
    pairs = [(journal.uid_key("sop", uid), digest) for uid, digest in storage_pairs(doc)]
    confirmed = journal.confirm(pairs, document_id, at) if pairs else 0
    bundle_id = str(doc.get("bundle_id", ""))
    if doc.get("kind") == "storage-receipt" and journal.bundle(bundle_id) is not None:
        journal.release_unconfirmed(bundle_id, document_id, at)  # its "not stored": taken again
    _write_confirmation(unlocked, drive, facility_id, document_id, written[0].name, at)
    for path in parts.values():
        path.unlink(missing_ok=True)
    fsync_dir(drive.outbox(facility_id))
    journal.record_delivery(document_id, facility_id, str(doc.get("kind", "")), at, drive.volume_id)
    return Delivered(document_id, str(doc.get("kind", "")), tuple(written), confirmed)


def confirmation_document(
    unlocked: UnlockedDevice, facility_id: str, document_id: str, clinic_name: str, at: str
) -> dict[str, Any]:
    device = unlocked.device
    return {
        "kind": CONFIRMATION_KIND,
        "version": 1,
        "document_id": document_id,
        "facility_id": facility_id,
        "delivered_at": at,
        "device_id": device.device_id,
        "device_fingerprint": fingerprint(device.signing_public),
        "clinic_path_name": clinic_name,
    }


def _write_confirmation(
    unlocked: UnlockedDevice,
    drive: Drive,
    facility_id: str,
    document_id: str,
    clinic_name: str,
    at: str,
) -> None:
    folder = drive.root / RETURNS_DIR / facility_id
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        fsync_dir(folder.parent)
    remove_temp_files_in(folder)
    body = canonical_json(
        confirmation_document(unlocked, facility_id, document_id, clinic_name, at)
    )
    signature = base64.b64encode(sign(unlocked.signing_seed, SIGNATURE_CONTEXT + body)) + b"\n"
    atomic_write(folder / f"delivery-{document_id}.json", body)
    atomic_write(folder / f"delivery-{document_id}.json.sig", signature)


def outbox_waiting(drive_root: Path) -> dict[str, int]:
    """Documents waiting in the drive's outbox, per facility (no key needed)."""
    root = drive_root / fmt.OUTBOX_DIR
    if not root.is_dir():
        return {}
    return {
        folder.name: len(_documents(folder))
        for folder in sorted(root.iterdir())
        if folder.is_dir() and os.access(folder, os.R_OK)
    }


@dataclass
class DeliverResult:
    report: DeliveryReport
    pending: list[ReceiptOutcome]


def deliver(
    unlocked: UnlockedDevice,
    *,
    facility_id: str,
    receipts_dir: Path | None,
    drive: Drive,
    now: datetime,
) -> DeliverResult:
    """`courier deliver`: the outbox documents and the receipts kept on the laptop, only."""
    with Journal.open(unlocked) as journal:
        report = deliver_outbox(unlocked, journal, drive, facility_id, receipts_dir, now)
    pending = deliver_pending(unlocked, facility_id, receipts_dir) if receipts_dir else []
    return DeliverResult(report, pending)
