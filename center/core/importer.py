"""`center import`: verify, decrypt, hash-check, store and catalog the bundles on a drive.

Per bundle (DESIGN.md s4, s6): keyless verification first (signature, tag files, then the
payload against the manifest) and an enrolled, active signer; the reception log and the courier
log it carries (contract C4); the index, checked against the manifest. Then each object is
decrypted into the store (:mod:`center.core.decrypt`); one that fails any check is quarantined
(:mod:`center.core.quarantine`) and the others are still stored. Last, in ONE transaction: the
catalog rows, the bundle row (``imported`` or ``partial``), the audit entry and checkpoint, and
the storage receipt with its expiry promises (:mod:`center.core.storage_receipts`). A crash
leaves at most unreferenced objects; running the import again completes it, and a bundle
already imported is not touched. Nothing is ever deleted.

Before the bundles, delivery confirmations on the drive are recorded (contract C2); after them,
the receipts' files are written and every undelivered document is pushed to the drive's outbox
(contract C1). A refusal is recorded in the audit log even though the bundle is not imported:
as a security alert (PS3.15 110113) when the bundle's origin is in doubt.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from center.core import audit, quarantine
from center.core.cataloging import catalog_bundle
from center.core.courierlog import CourierLogCheck, check_courier_log, record_positions
from center.core.decrypt import storage_error
from center.core.devices import active_recipients, require_active
from center.core.importreport import (
    ALREADY,
    IMPORTED,
    PARTIAL,
    REFUSED,
    UNSEALED,
    BundleOutcome,
    ImportReport,
)
from center.core.lock import maintenance_lock
from center.core.missing import find_missing, record_known_bundles
from center.core.outbox import RETURNS, push_outbox, read_confirmations
from center.core.screening import check_index, screen
from center.core.storage_receipts import build_document, finish_receipts, record_receipt
from center.core.storing import store_objects
from common.bundle import format as fmt
from common.bundle.reader import (
    BundleIndex,
    IndexEntry,
    SpoolWriteError,
    open_index,
    read_reception,
)
from common.bundle.verify import verify_bundle
from common.errors import (
    ArchiveError,
    ArchiveFull,
    BundleIdReused,
    BundleSignatureInvalid,
    BundleWrongCenter,
    BundleWrongSigner,
    CourierLogForked,
    CourierLogInvalid,
    DecryptError,
    DeviceRevoked,
    DeviceUnknown,
    DriveError,
    NoBundles,
    StorageError,
)
from common.progress import NoProgress, Progress
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.archive import Archive, CenterKeys

INTAKE_MIGRATIONS = [
    (
        "intake-0001-bundle-seals",
        """
        CREATE TABLE bundle_seals (
            bundle_id TEXT PRIMARY KEY REFERENCES bundles(bundle_id),
            tagmanifest_sha256 TEXT NOT NULL
        )
        """,
    ),
]

# Refusals that put the bundle's origin in doubt: recorded as security alerts.
SECURITY_REFUSALS = (
    BundleSignatureInvalid,
    BundleWrongSigner,
    DeviceUnknown,
    DeviceRevoked,
    CourierLogInvalid,
    CourierLogForked,
    BundleIdReused,
)
_T = TypeVar("_T")


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
    """Import every sealed, not yet imported bundle on *drive_root* (or just *only_bundle*).

    Each bundle ends imported, partial, already-imported, unsealed or refused; a full or
    failing archive disk stops the whole import (StorageError / ArchiveFull), keeping what was
    committed. Problems writing the drive's outbox are reported in ``outbox_error``.
    """
    if not drive_root.is_dir():
        raise DriveError(
            f"{drive_root} is not a folder", hint="Mount the courier drive and name its folder."
        )
    candidates = _bundle_dirs(drive_root, only_bundle)
    if not candidates and (only_bundle is not None or not (drive_root / RETURNS).is_dir()):
        what = f"no bundle {only_bundle}" if only_bundle else "no bundles"
        raise NoBundles(f"{drive_root} holds {what} to import")
    with maintenance_lock(archive.paths.root, "import"):
        return _import(archive, keys, drive_root, candidates, operator, now, progress)


def _import(
    archive: Archive,
    keys: CenterKeys,
    drive_root: Path,
    candidates: list[Path],
    operator: str,
    now: datetime,
    progress: Progress | None,
) -> ImportReport:
    report = ImportReport(drive_root)
    report.confirmations = read_confirmations(archive, drive_root, operator=operator, now=now)
    intake = _Intake(archive, keys, operator, now, progress or NoProgress())
    for bundle_dir in candidates:
        try:
            outcome = intake.bundle(bundle_dir)
        except StorageError:
            raise
        except ArchiveError as exc:
            outcome = intake.refuse(bundle_dir, exc)
        except OSError as exc:
            outcome = intake.refuse(
                bundle_dir,
                DriveError(f"cannot read bundle {bundle_dir.name}: {exc.strerror or exc}"),
            )
        report.outcomes.append(outcome)
    report.missing = find_missing(archive.conn, now=now).missing
    try:
        report.receipts = [files.html for files in finish_receipts(archive, keys, now)]
    except OSError as exc:
        raise storage_error(exc, "storage receipts") from exc
    try:
        report.push = push_outbox(
            archive, drive_root, active_recipients(archive.conn), now, operator=operator
        )
    except DriveError as exc:
        report.outbox_error = exc
    return report


def _bundle_dirs(drive_root: Path, only_bundle: str | None) -> list[Path]:
    root = drive_root / fmt.BUNDLES_DIR
    if not root.is_dir():
        return []
    found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [p for p in found if only_bundle is None or p.name == only_bundle]


def _seal_of(bundle_dir: Path) -> str | None:
    """sha256 of the signed tag manifest: what identifies a bundle's content."""
    try:
        return hashlib.sha256((bundle_dir / fmt.TAGMANIFEST).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _date_of(text: str, fallback: datetime) -> date:
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        return fallback.date()


@dataclass
class _Intake:
    archive: Archive
    keys: CenterKeys
    operator: str
    now: datetime
    progress: Progress

    def refuse(self, bundle_dir: Path, exc: ArchiveError) -> BundleOutcome:
        """Record the refusal in the audit log (committed on its own) and report it."""
        target = f"bundle:{bundle_dir.name}"
        if isinstance(exc, SECURITY_REFUSALS):
            audit.alert(
                self.archive.conn,
                at=self.now,
                operator=self.operator,
                action="import",
                target=target,
                event_type=audit.EVENT_TYPE_NODE_AUTHENTICATION,
                reason=exc.message,
                details={"error": exc.ref},
            )
        else:
            with transaction(self.archive.conn):
                audit.record(
                    self.archive.conn,
                    at=self.now,
                    operator=self.operator,
                    action="import",
                    event_code=audit.EVENT_IMPORT,
                    target=target,
                    outcome=audit.OUTCOME_REFUSED,
                    details={"error": exc.ref, "reason": exc.message},
                )
        return BundleOutcome(bundle_dir.name, REFUSED, reason=exc.message, error_ref=exc.ref)

    def bundle(self, bundle_dir: Path) -> BundleOutcome:
        bundle_id, seal = bundle_dir.name, _seal_of(bundle_dir)
        known = self.archive.conn.execute(
            "SELECT s.tagmanifest_sha256 FROM bundles b LEFT JOIN bundle_seals s "
            "USING (bundle_id) WHERE b.bundle_id = ?",
            (bundle_id,),
        ).fetchone()
        if known is not None:
            if known[0] is not None and seal is not None and known[0] != seal:
                raise BundleIdReused(
                    f"bundle {bundle_id} differs from the bundle of that id imported before"
                )
            return BundleOutcome(bundle_id, ALREADY, reason="imported before; nothing to do")
        screened = screen(verify_bundle(bundle_dir, check_payload=False))
        if screened is None:
            return BundleOutcome(
                bundle_id, UNSEALED, reason="not sealed: the courier's pull did not finish"
            )
        info = screened.info
        device = require_active(self.archive.conn, info.device_fingerprint)
        if device.device_id != info.device_id:
            raise BundleWrongSigner(
                f"bundle {bundle_id} names device {info.device_id} but is signed by "
                f"{device.device_id}"
            )
        self.progress.phase("verify", info.object_count)
        full = screen(
            verify_bundle(  # objects are checked while storing (one read of the drive)
                bundle_dir,
                hash_payload=False,
                on_object=lambda n: self.progress.advance(1, nbytes=n),
            )
        )
        if full is None:
            return BundleOutcome(bundle_id, UNSEALED, reason="its signature disappeared")
        reception = self._decrypting(lambda: read_reception(bundle_dir, self.keys.identity))
        log = check_courier_log(
            self.archive.conn,
            device_id=info.device_id,
            device_public=info.device_public_key,
            bundle_id=bundle_id,
            facility_id=info.facility_id,
            reception=reception,
        )
        with self._decrypting(
            lambda: open_index(
                bundle_dir, self.keys.identity, info, spool_dir=self.archive.paths.tmp
            )
        ) as index:
            check_index(index, bundle_dir, info)
            stored, rejected = self._store(bundle_dir, index, info, full.damaged)
            kept: dict[str, str | None] = {}
            if rejected:
                try:
                    kept = quarantine.keep(self.archive.paths, bundle_dir, info, rejected, self.now)
                except OSError as exc:
                    raise storage_error(exc, "quarantine") from exc
            outcome = BundleOutcome(
                bundle_id,
                PARTIAL if rejected else IMPORTED,
                info.facility_id,
                info.device_id,
                objects=info.object_count,
                stored=len(stored),
                quarantined=len(rejected),
                notes=[log.note],
            )
            self._commit(outcome, info, index, stored, rejected, kept, reception, log, seal)
        return outcome

    def _decrypting(self, action: Callable[[], _T]) -> _T:
        """Run *action*, which decrypts a tag file: failing that, the bundle is not for us."""
        try:
            return action()
        except SpoolWriteError as exc:  # the archive's disk, not the bundle
            raise storage_error(exc, "the bundle's decrypted index") from exc
        except DecryptError as exc:
            # The file matched the signed tag manifest, so it is what the courier wrote:
            # it was encrypted to another center's key.
            raise BundleWrongCenter(
                "the bundle is encrypted to another center's key: its index and reception log "
                "do not open with this archive's key"
            ) from exc

    def _store(
        self, bundle_dir: Path, index: BundleIndex, info: fmt.BagInfo, damaged: dict[str, str]
    ) -> tuple[set[int], list[quarantine.Rejected]]:
        self.progress.phase("import", info.object_count)
        # Damaged on the drive, an object is still stored when the archive holds its bytes.
        manifest = fmt.parse_checksums((bundle_dir / fmt.MANIFEST).read_bytes(), fmt.MANIFEST)
        return store_objects(
            self.archive,
            self.keys.identity,
            bundle_dir,
            index,
            damaged,
            self.progress,
            manifest=manifest,
        )

    def _commit(
        self,
        outcome: BundleOutcome,
        info: fmt.BagInfo,
        index: BundleIndex,
        stored: set[int],
        rejected: list[quarantine.Rejected],
        kept: dict[str, str | None],
        reception: dict[str, Any],
        log: CourierLogCheck,
        seal: str | None,
    ) -> None:
        conn = self.archive.conn

        def stored_entries() -> Iterator[IndexEntry]:
            return (entry for entry in index if entry.seq in stored)

        reception_date = _date_of(str(reception.get("received", info.created)), self.now)
        try:
            with transaction(conn):
                outcome.studies, outcome.new_instances = catalog_bundle(
                    self.archive,
                    info,
                    stored_entries(),
                    reception,
                    reception_date,
                    self.operator,
                    self.now,
                    status=outcome.status,
                    stored_count=len(stored),
                )
                if seal is not None:
                    conn.execute(
                        "INSERT INTO bundle_seals (bundle_id, tagmanifest_sha256) VALUES (?, ?)",
                        (info.bundle_id, seal),
                    )
                quarantine.record(conn, info.bundle_id, rejected, kept, self.now)
                record_positions(conn, info.device_id, info.bundle_id, log)
                record_known_bundles(conn, info.device_id, info.bundle_id, reception, log)
                audit.record(
                    conn,
                    at=self.now,
                    operator=self.operator,
                    action="import",
                    event_code=audit.EVENT_IMPORT,
                    target=f"bundle:{info.bundle_id}",
                    outcome=audit.OUTCOME_PARTIAL if rejected else audit.OUTCOME_SUCCESS,
                    details={
                        "facility_id": info.facility_id,
                        "device_id": info.device_id,
                        "objects": info.object_count,
                        "stored": len(stored),
                        "new_instances": outcome.new_instances,
                        "quarantined": len(rejected),
                        "studies": outcome.studies,
                        "courier_log": log.status,
                    },
                )
                checkpoint = audit.checkpoint(conn, self.keys.signing_seed, self.now)
                if checkpoint is None:
                    raise RuntimeError("the audit log is empty right after an entry was added")
                document = build_document(
                    conn,
                    center_name=self.archive.card.center_name,
                    center_public=self.archive.card.signing_public,
                    facility_id=info.facility_id,
                    bundle_id=info.bundle_id,
                    stored=stored_entries(),
                    not_stored=rejected,
                    checkpoint=checkpoint,
                    now=self.now,
                )
                record_receipt(conn, document)
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise ArchiveFull("the archive's disk is full (catalog)") from exc
            raise
        outcome.receipt_id = str(document["receipt_id"])
