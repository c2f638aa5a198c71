"""The reception receipt left at the clinic, and where it goes when the clinic's folder cannot
take it.

The receipt (common/receipts.py) is written into the facility's receipts folder. When that
folder is missing, read-only, full or failing, the receipt is not lost and not left in clear on the
laptop: its three files are encrypted to this device's own age key into
``<home>/pending-receipts/<facility>/`` and the operator is told. They are handed to the clinic
by the next ``courier deliver`` or ``courier pull`` of that facility that can write to its
folder (``courier deliver ID --receipts DIR`` names another folder, such as a USB stick
for the clinic).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from common.crypto import decrypt_bytes, encrypt_bytes, recipient_of
from common.dicomhdr import InstanceHeader
from common.errors import DecryptError
from common.fsio import TEMP_SUFFIX, atomic_write, fsync_dir
from common.receipts import (
    ReceiptFiles,
    ReceivedInstance,
    issuer,
    receipt_bytes,
    reception_receipt,
)
from courier.core.device import UnlockedDevice
from courier.core.journal import Journal

PENDING_DIR = "pending-receipts"
TITLE = "Reception receipt"


@dataclass(frozen=True)
class ReceiptOutcome:
    """Where the receipt went: the clinic's folder, or the encrypted fallback and why."""

    receipt_id: str
    files: ReceiptFiles | None
    fallback: Path | None = None
    reason: str = ""


def pending_folder(home: Path, facility_id: str) -> Path:
    return home / PENDING_DIR / facility_id


def write_reception_receipt(
    unlocked: UnlockedDevice,
    receipts_dir: Path | None,
    document: dict[str, Any],
) -> ReceiptOutcome:
    """Sign and write *document* for the clinic, falling back to the encrypted pending copy."""
    receipt_id = str(document["receipt_id"])
    data = receipt_bytes(document, unlocked.signing_seed, title=TITLE)
    if receipts_dir is None:
        reason = "no receipts folder is configured for this clinic"
    else:
        try:
            return ReceiptOutcome(receipt_id, _write_files(receipts_dir, receipt_id, data))
        except OSError as exc:  # whatever failed there, the receipt is kept, not lost
            reason = f"the clinic's folder {receipts_dir} is not writable ({exc.strerror or exc})"
    folder = pending_folder(unlocked.device.home.root, str(document["facility_id"]))
    recipient = recipient_of(unlocked.age_identity)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for suffix, content in data.items():
        atomic_write(folder / f"{receipt_id}{suffix}.age", encrypt_bytes(content, [recipient]))
    return ReceiptOutcome(receipt_id, None, folder, reason)


def _write_files(folder: Path, receipt_id: str, data: dict[str, bytes]) -> ReceiptFiles:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f".*{TEMP_SUFFIX}"):  # left by an interrupted write of ours
        stale.unlink(missing_ok=True)
    stem = folder / receipt_id
    files = ReceiptFiles(Path(f"{stem}.json"), Path(f"{stem}.json.sig"), Path(f"{stem}.html"))
    for path, suffix in (
        (files.json, ".json"),
        (files.signature, ".json.sig"),
        (files.html, ".html"),
    ):
        atomic_write(path, data[suffix])
    return files


def pending_receipts(home: Path, facility_id: str) -> list[str]:
    """Receipt ids kept encrypted on the laptop for *facility_id*."""
    folder = pending_folder(home, facility_id)
    return sorted({p.name.split(".json")[0] for p in folder.glob("*.json.age")})


def deliver_pending(
    unlocked: UnlockedDevice, facility_id: str, receipts_dir: Path
) -> list[ReceiptOutcome]:
    """Write the pending receipts of *facility_id* into *receipts_dir*; keep what fails."""
    home = unlocked.device.home.root
    folder = pending_folder(home, facility_id)
    done = []
    for receipt_id in pending_receipts(home, facility_id):
        paths = {s: folder / f"{receipt_id}{s}.age" for s in (".json", ".json.sig", ".html")}
        try:
            data = {
                s: decrypt_bytes(p.read_bytes(), unlocked.age_identity) for s, p in paths.items()
            }
        except (DecryptError, FileNotFoundError):
            continue  # damaged or partial: kept for the operator to look at
        try:
            files = _write_files(receipts_dir, receipt_id, data)
        except OSError:  # the folder cannot take it now: kept for the next delivery
            break
        for path in paths.values():
            path.unlink()
        fsync_dir(folder)
        done.append(ReceiptOutcome(receipt_id, files))
    return done


def finish_bundle(
    unlocked: UnlockedDevice,
    journal: Journal,
    bundle_id: str,
    receipts_dir: Path | None,
    now: datetime,
) -> ReceiptOutcome:
    """Write the reception receipt of a sealed bundle and record the visit (idempotent)."""
    visit = journal.prepared_visit(bundle_id) or {}
    changed = [  # the bundle's objects are read twice, a page at a time: never all in memory
        {
            "item": str(r.entry["source_relpath"]),
            "reason": "this instance was carried before with other content: taken again",
        }
        for r in journal.objects(bundle_id)
        if r.entry.get("changed_since_last_pull")
    ]
    received = (
        ReceivedInstance(
            InstanceHeader.from_dict(r.entry["header"]), r.plain_sha256, int(r.entry["size"])
        )
        for r in journal.objects(bundle_id)
    )
    device = unlocked.device
    document = reception_receipt(
        bundle_id=bundle_id,
        facility_id=str(visit.get("facility_id", "")),
        issued=now.isoformat(timespec="seconds"),
        issuer_info=issuer(
            "courier-device", device.operator, device.signing_public, device_id=device.device_id
        ),
        received=received,
        skipped=list(visit.get("skipped", [])),
        changed=changed,
        visit={
            k: visit.get(k)
            for k in ("rule", "files_seen", "not_selected", "already_carried", "capacity")
        },
        warnings=list(visit.get("warnings", [])),
    )
    outcome = write_reception_receipt(unlocked, receipts_dir, document)
    summary = {k: v for k, v in visit.items() if k != "skipped"}
    totals = document["totals"]
    summary.update(
        objects=totals["instances"],
        studies=totals["studies"],
        bytes=totals["bytes"],
        changed=len(changed),
        receipt="clinic folder" if outcome.files else f"kept on this laptop: {outcome.reason}",
    )
    journal.finish_bundle(bundle_id, summary)
    return outcome
