"""Filling one bundle on the drive: resume, copy, read back, seal (DESIGN.md s4 and s6).

The journal is the truth and the drive is never trusted. Resuming an open bundle first
removes temporary files, deletes object files the journal does not know, and forgets journal
rows whose file is missing or of the wrong size, so those instances are copied again. Before
sealing, every object is re-read from the device (page cache evicted) and compared with the
journal; a bad object is forgotten and copied again, and a bundle is never sealed with one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from common.bundle import format as fmt
from common.bundle.verify import verify_bundle
from common.bundle.writer import BundleWriter, SealedObject
from common.crypto import fingerprint
from common.errors import DriveError
from common.fsio import fsync_dir
from common.progress import Progress
from courier.core import courierlog
from courier.core.copier import drive_error
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.journal import Journal


@dataclass
class Reconciled:
    """What resuming an open bundle found and repaired."""

    temp_files: int = 0
    orphans: int = 0
    dropped: int = 0


def bundle_dir(drive: Drive, bundle_id: str) -> Path:
    return drive.bundles / bundle_id


def sealed_and_valid(journal: Journal, drive: Drive, bundle_id: str) -> bool | None:
    """For an open bundle whose signature is on the drive (the pull died after writing it):
    True when the bundle verifies and holds exactly the journal's objects, False when it must
    be unsealed, None when there is no signature."""
    folder = bundle_dir(drive, bundle_id)
    if not (folder / fmt.SIGNATURE).exists():
        return None
    report = verify_bundle(folder)
    if not report.valid or report.info is None:
        return False
    expected = {fmt.object_relpath(seq) for seq in journal.object_sizes(bundle_id)}
    listed = fmt.parse_checksums((folder / fmt.MANIFEST).read_bytes(), fmt.MANIFEST)
    return set(listed) == expected and journal.prepared_visit(bundle_id) is not None


def adopt(unlocked: UnlockedDevice, journal: Journal, drive: Drive, bundle_id: str) -> None:
    """Record as sealed a bundle whose signature reached the drive before the pull died."""
    info = fmt.BagInfo.parse((bundle_dir(drive, bundle_id) / fmt.BAG_INFO).read_bytes())
    entry = courierlog.entry_for_bundle(journal.conn, bundle_id)
    if entry is None:  # pragma: no cover - the entry is appended before anything is sealed
        raise DriveError(f"bundle {bundle_id} is sealed but this laptop has no log of it")
    block = courierlog.carried_block(journal.conn, entry, unlocked.signing_seed)
    journal.mark_sealed(
        bundle_id,
        sealed_at=info.created,
        objects=info.object_count,
        studies=info.study_count,
        size=info.payload_bytes,
        checkpoint=block["checkpoint"],
    )


def unseal(drive: Drive, bundle_id: str) -> None:
    """Remove a signature that must not stand (the bundle is then resumed and sealed again)."""
    folder = bundle_dir(drive, bundle_id)
    (folder / fmt.SIGNATURE).unlink(missing_ok=True)
    fsync_dir(folder)


def reconcile(journal: Journal, writer: BundleWriter, bundle_id: str) -> Reconciled:
    """Make the open bundle and the journal agree before copying more into it."""
    result = Reconciled(temp_files=writer.remove_temp_files())
    sizes = journal.object_sizes(bundle_id)
    data = writer.dir / fmt.DATA
    for path in sorted(data.glob("s*/*.age")) if data.is_dir() else []:
        seq = int(path.stem) if path.stem.isdigit() else -1
        if seq not in sizes or fmt.object_relpath(seq) != path.relative_to(writer.dir).as_posix():
            path.unlink()
            fsync_dir(path.parent)
            result.orphans += 1
    for seq, size in sorted(sizes.items()):
        path = writer.dir / fmt.object_relpath(seq)
        try:
            ok = path.stat().st_size == size
        except FileNotFoundError:
            ok = False
        if not ok:
            path.unlink(missing_ok=True)
            journal.drop_object(bundle_id, seq)
            result.dropped += 1
    return result


def read_back(
    journal: Journal,
    writer: BundleWriter,
    bundle_id: str,
    progress: Progress,
    verified: dict[int, tuple[str, int]] | None = None,
) -> tuple[int, list[int]]:
    """Every object re-read from the device: how many there are, and the seqs that do not
    match.

    *verified* holds what objects copied by this run read back as right after they became
    durable (courier/core/copier.py); the others (a resumed bundle's) are re-read now.
    """
    checks = journal.object_checks(bundle_id)
    progress.phase("read-back", len(checks))
    verified = verified or {}
    bad = []
    for seq, cipher_sha256, cipher_size in checks:
        try:
            digest, size = verified.get(seq) or writer.read_back(seq)
        except FileNotFoundError:
            digest, size = "", -1
        if (digest, size) != (cipher_sha256, cipher_size):
            bad.append(seq)
        progress.advance(1, nbytes=max(size, 0))
    return len(checks), bad


def changed_count(journal: Journal, bundle_id: str) -> int:
    """Objects of the bundle whose instance was carried before with other bytes."""
    return sum(bool(r.entry.get("changed_since_last_pull")) for r in journal.objects(bundle_id))


def forget(journal: Journal, writer: BundleWriter, bundle_id: str, seqs: list[int]) -> None:
    """Drop objects that read back wrong, so the next round copies them again."""
    for seq in seqs:
        (writer.dir / fmt.object_relpath(seq)).unlink(missing_ok=True)
        journal.drop_object(bundle_id, seq)


def seal(
    unlocked: UnlockedDevice,
    journal: Journal,
    writer: BundleWriter,
    bundle_id: str,
    *,
    facility_id: str,
    now: datetime,
    visit: dict[str, Any],
    reception: dict[str, Any],
) -> dict[str, Any]:
    """Append this visit to the courier log, write every tag file, sign last; return the
    checkpoint the bundle carries. The objects are those the journal records (read back);
    their index entries are streamed from it."""
    device = unlocked.device
    objects, studies, plain_bytes, cipher_bytes = journal.bundle_totals(bundle_id)
    content = {
        "at": now.isoformat(timespec="seconds"),
        "facility_id": facility_id,
        "bundle_id": bundle_id,
        "operator": device.operator,
        "objects": objects,
        "studies": studies,
        "bytes": plain_bytes,
        "skipped": int(visit.get("skipped_count", 0)),
    }
    entry = courierlog.entry_for_bundle(journal.conn, bundle_id)
    counts = ("objects", "studies", "bytes", "skipped")
    if entry is None or any(entry.content.get(k) != content[k] for k in counts):
        entry = courierlog.append(journal.conn, content)
    block = courierlog.carried_block(journal.conn, entry, unlocked.signing_seed)
    journal.prepare_seal(bundle_id, visit)
    info = fmt.BagInfo(
        bundle_id=bundle_id,
        device_id=device.device_id,
        device_fingerprint=fingerprint(device.signing_public),
        device_public_key=device.signing_public,
        facility_id=facility_id,
        created=now.isoformat(timespec="seconds"),
        object_count=objects,
        study_count=studies,
        payload_bytes=cipher_bytes,
    )
    try:
        writer.seal(
            info=info,
            objects=[
                SealedObject(fmt.object_relpath(seq), digest, size)
                for seq, digest, size in journal.object_checks(bundle_id)
            ],
            index_entries=(r.entry for r in journal.objects(bundle_id)),
            reception={**reception, "courier_log": block},
            recipients=device.center.recipients,
            signing_seed=unlocked.signing_seed,
        )
    except OSError as exc:
        raise drive_error(exc, "seal") from exc
    checkpoint: dict[str, Any] = block["checkpoint"]
    journal.mark_sealed(
        bundle_id,
        sealed_at=now.isoformat(timespec="seconds"),
        objects=objects,
        studies=studies,
        size=info.payload_bytes,
        checkpoint=checkpoint,
    )
    return checkpoint
