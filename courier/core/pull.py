"""A clinic visit's pull: select flagged instances, encrypt them onto the drive, seal, receipt.

Order of effects per object (DESIGN.md s6): temp file, fsync, rename, fsync dir, then the journal
row. Before sealing, every object is re-read from the drive with the page cache evicted and
compared with the journal. The signature is written last; the journal marks the bundle sealed
after it. An interrupted pull is resumed by running it again: the open bundle is reopened, temp
files are removed and the journal's claims are re-checked against the drive.
"""

from __future__ import annotations

import errno
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from common.bundle import format as fmt
from common.bundle.writer import BundleWriter, SealedObject, hash_file
from common.crypto import fingerprint
from common.dicomhdr import HeaderError, InstanceHeader, read_header
from common.errors import BundleError, DriveFull
from common.progress import NoProgress, Progress
from common.receipts import ReceiptFiles, ReceivedInstance, issuer, summarize_studies, write_receipt
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.journal import Journal, ObjectRow
from courier.core.selection import SelectionRule
from courier.core.source import SourceFile, walk_folder

# Per-object age overhead is about 200 bytes of header plus 16 bytes per 64 KiB chunk.
_AGE_OVERHEAD = 512
_RESERVE = 4 << 20


@dataclass(frozen=True)
class Skipped:
    relpath: str
    reason: str


@dataclass(frozen=True)
class Candidate:
    file: SourceFile
    header: InstanceHeader
    file_key: str
    sop_key: str
    study_key: str
    changed: bool


@dataclass
class Plan:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    not_selected: int = 0
    already_carried: int = 0
    parsed: int = 0
    files_seen: int = 0

    @property
    def bytes_needed(self) -> int:
        return sum(c.file.size + _AGE_OVERHEAD for c in self.candidates)


@dataclass
class PullResult:
    facility_id: str
    bundle_id: str | None
    instances: int
    studies: int
    payload_bytes: int
    plan: Plan
    changed: int
    receipt: ReceiptFiles | None


def plan_pull(
    journal: Journal,
    facility_id: str,
    source_root: Path,
    rule: SelectionRule,
    progress: Progress | None = None,
) -> Plan:
    """Walk the terminal and decide, per file, whether it is to be pulled and why not."""
    progress = progress or NoProgress()
    plan = Plan()
    seen: dict[str, set[str]] = {}
    progress.phase("scan", None)
    for file in walk_folder(source_root):
        plan.files_seen += 1
        progress.advance(1, nbytes=file.size)
        file_key = journal.file_key(facility_id, file.relpath)
        known = journal.file_state(facility_id, file_key)
        if known is not None and (known["size"], known["mtime_ns"]) == (file.size, file.mtime_ns):
            if known["state"] == "carried":
                plan.already_carried += 1
                continue
            if known["state"] == "not-selected":
                plan.not_selected += 1
                continue
            if known["state"] == "skipped":
                plan.skipped.append(Skipped(file.relpath, str(known["reason"])))
                continue
        plan.parsed += 1
        try:
            header = read_header(file.path)
        except HeaderError as exc:
            plan.skipped.append(Skipped(file.relpath, exc.reason))
            journal.set_file_state(
                facility_id, file_key, file.size, file.mtime_ns, "skipped", exc.reason
            )
            continue
        if not rule.selects(header):
            plan.not_selected += 1
            journal.set_file_state(facility_id, file_key, file.size, file.mtime_ns, "not-selected")
            continue
        sop_key = journal.uid_key("sop", header.sop_instance_uid)
        carried = journal.carried_sha256(sop_key) | seen.get(sop_key, set())
        changed = False
        if carried:
            digest, _ = hash_file(file.path)
            if digest in carried:
                plan.already_carried += 1
                journal.set_file_state(facility_id, file_key, file.size, file.mtime_ns, "carried")
                continue
            changed = True
            seen.setdefault(sop_key, set()).add(digest)
        else:
            seen[sop_key] = set()
        study_key = journal.uid_key("study", header.study_instance_uid)
        plan.candidates.append(Candidate(file, header, file_key, sop_key, study_key, changed))
    return plan


def new_bundle_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def pull(
    unlocked: UnlockedDevice,
    *,
    facility_id: str,
    source_root: Path,
    drive: Drive,
    rule: SelectionRule,
    receipts_dir: Path | None,
    now: datetime,
    progress: Progress | None = None,
) -> PullResult:
    """Pull the flagged instances of *facility_id* from *source_root* into a sealed bundle."""
    progress = progress or NoProgress()
    device = unlocked.device
    recipients = device.center.recipients
    with Journal.open(unlocked) as journal:
        plan = plan_pull(journal, facility_id, source_root, rule, progress)
        bundle_id = journal.open_bundle(facility_id, drive.volume_id)
        if not plan.candidates and bundle_id is None:
            return PullResult(facility_id, None, 0, 0, 0, plan, 0, None)
        needed = plan.bytes_needed + _RESERVE
        free = drive.free_bytes()
        if needed > free:
            raise DriveFull(
                f"the drive needs {needed / 1e6:,.1f} MB free for this pull and has "
                f"{free / 1e6:,.1f} MB",
                hint="Free space on the drive or insert a larger one, then run the pull again.",
            )
        if bundle_id is None:
            bundle_id = new_bundle_id(now)
            journal.create_bundle(bundle_id, facility_id, drive.volume_id, now.isoformat())
        writer = BundleWriter.open(drive.bundles, bundle_id)
        writer.remove_temp_files()
        changed = _copy(journal, writer, bundle_id, facility_id, plan, recipients, progress)
        rows = list(journal.objects(bundle_id))
        _read_back(writer, rows, progress)
        studies = {row.entry["header"]["study_instance_uid"] for row in rows}
        payload = sum(row.cipher_size for row in rows)
        info = fmt.BagInfo(
            bundle_id=bundle_id,
            device_id=device.device_id,
            device_fingerprint=fingerprint(device.signing_public),
            device_public_key=device.signing_public,
            facility_id=facility_id,
            created=now.isoformat(timespec="seconds"),
            object_count=len(rows),
            study_count=len(studies),
            payload_bytes=payload,
        )
        reception = _reception_log(unlocked, facility_id, now, plan, len(rows), len(studies))
        progress.phase("seal", None)
        writer.seal(
            info=info,
            objects=[
                SealedObject(fmt.object_relpath(r.seq), r.cipher_sha256, r.cipher_size)
                for r in rows
            ],
            index_entries=(r.entry for r in rows),
            reception=reception,
            recipients=recipients,
            signing_seed=unlocked.signing_seed,
        )
        journal.mark_sealed(bundle_id, now.isoformat(), len(rows), len(studies), payload)
        received = [
            ReceivedInstance(
                InstanceHeader.from_dict(r.entry["header"]), r.plain_sha256, int(r.entry["size"])
            )
            for r in rows
        ]
        receipt = None
        if receipts_dir is not None:
            receipt = _write_reception_receipt(
                unlocked, receipts_dir, bundle_id, facility_id, now, received, plan
            )
        journal.record_visit(
            facility_id, bundle_id, device.operator, now.isoformat(), now.isoformat(), reception
        )
        return PullResult(
            facility_id, bundle_id, len(rows), len(studies), payload, plan, changed, receipt
        )


def _copy(
    journal: Journal,
    writer: BundleWriter,
    bundle_id: str,
    facility_id: str,
    plan: Plan,
    recipients: list[str],
    progress: Progress,
) -> int:
    progress.phase("copy", len(plan.candidates))
    changed = 0
    for cand in plan.candidates:
        seq = journal.next_seq(bundle_id)
        try:
            with cand.file.path.open("rb") as fh:
                digest = writer.write_object(seq, fh, recipients)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DriveFull(
                    "the drive filled up during the copy",
                    hint="Free space or change the drive, then run the pull again to resume.",
                ) from exc
            raise
        entry = {
            "seq": seq,
            "path": fmt.object_relpath(seq),
            "sha256": digest.plain_sha256,
            "size": digest.plain_size,
            "source_relpath": cand.file.relpath,
            "changed_since_last_pull": cand.changed,
            "header": cand.header.to_dict(),
        }
        journal.add_object(
            bundle_id,
            seq=seq,
            file_key=cand.file_key,
            sop_key=cand.sop_key,
            study_key=cand.study_key,
            plain_sha256=digest.plain_sha256,
            plain_size=digest.plain_size,
            cipher_sha256=digest.cipher_sha256,
            cipher_size=digest.cipher_size,
            entry=entry,
        )
        journal.set_file_state(
            facility_id, cand.file_key, cand.file.size, cand.file.mtime_ns, "carried"
        )
        changed += cand.changed
        progress.advance(1, nbytes=digest.plain_size)
    return changed


def _read_back(writer: BundleWriter, rows: list[ObjectRow], progress: Progress) -> None:
    progress.phase("read-back", len(rows))
    for row in rows:
        digest, size = writer.read_back(row.seq)
        if (digest, size) != (row.cipher_sha256, row.cipher_size):
            raise BundleError(
                f"object {fmt.object_relpath(row.seq)} reads back differently from what was "
                "written: the drive may be failing",
                hint="Use another drive; the bundle was not sealed.",
            )
        progress.advance(1, nbytes=size)


def _reception_log(
    unlocked: UnlockedDevice,
    facility_id: str,
    now: datetime,
    plan: Plan,
    objects: int,
    studies: int,
) -> dict[str, Any]:
    return {
        "kind": "reception-log",
        "operator": unlocked.device.operator,
        "facility_id": facility_id,
        "received": now.isoformat(timespec="seconds"),
        "objects": objects,
        "studies": studies,
        "files_seen": plan.files_seen,
        "skipped": len(plan.skipped),
        "not_selected": plan.not_selected,
        "already_carried": plan.already_carried,
    }


def _write_reception_receipt(
    unlocked: UnlockedDevice,
    folder: Path,
    bundle_id: str,
    facility_id: str,
    now: datetime,
    received: list[ReceivedInstance],
    plan: Plan,
) -> ReceiptFiles:
    studies = summarize_studies(received)
    device = unlocked.device
    document = {
        "kind": "reception-receipt",
        "version": 1,
        "receipt_id": f"reception-{bundle_id}",
        "issued": now.isoformat(timespec="seconds"),
        "facility_id": facility_id,
        "bundle_id": bundle_id,
        "issuer": issuer(
            "courier-device", device.operator, device.signing_public, device_id=device.device_id
        ),
        "studies": studies,
        "totals": {
            "studies": len(studies),
            "instances": len(received),
            "bytes": sum(r.size for r in received),
        },
        "skipped": [{"item": s.relpath, "reason": s.reason} for s in plan.skipped],
    }
    return write_receipt(folder, document, unlocked.signing_seed, title="Reception receipt")
