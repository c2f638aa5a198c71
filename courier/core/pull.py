"""A clinic visit: deliver, select, copy, read back, seal, receipt (DESIGN.md s3, s4, s6, s9).

1. Documents waiting for the clinic in the drive's outbox (storage receipts, notices) and
   receipts kept on the laptop for it are delivered first (courier/core/deliver.py); a storage
   receipt marks its instances confirmed stored, so they are never pulled again.
2. A bundle of this facility left open on this drive by an interrupted pull is resumed
   (courier/core/bundlejob.py); one found already sealed on the drive is recorded as such.
3. The terminal is planned (courier/core/plan.py), its capacity measured, and free space on
   the drive checked before anything is copied.
4. The selected instances are copied, every object is read back from the device, and the
   bundle is sealed with the courier log; then the clinic gets its reception receipt and the
   visit is recorded. A receipt that cannot be written at the clinic is kept encrypted on the
   laptop (courier/core/reception.py).

Running the same pull again after an interruption anywhere finishes the job: nothing is
missing, nothing is carried twice, and no bundle is ever sealed with a bad object.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from common.bundle.writer import BundleWriter
from common.errors import BundleError, DriveFull
from common.progress import NoProgress, Progress
from courier.core import bundlejob, copier, courierlog
from courier.core.capacity import Capacity
from courier.core.deliver import DeliveryReport, deliver_outbox
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.facilities import Facility
from courier.core.journal import Journal
from courier.core.plan import AGE_OVERHEAD, Plan
from courier.core.reception import ReceiptOutcome, deliver_pending, finish_bundle
from courier.core.sizes import format_bytes
from courier.core.source import NodeSource, parse_source
from courier.core.visitplan import load_rule, node_client, plan_visit

RESERVE = 4 << 20  # head room on the drive for tag files and the file system
_ROUNDS = 2  # copy rounds: a second one re-copies objects that read back wrong


@dataclass
class PullResult:
    facility_id: str
    source: str
    bundle_id: str | None = None
    instances: int = 0
    studies: int = 0
    payload_bytes: int = 0
    plan: Plan = field(default_factory=Plan)
    changed: int = 0
    receipt: ReceiptOutcome | None = None
    capacity: Capacity | None = None
    warnings: list[str] = field(default_factory=list)
    delivery: DeliveryReport | None = None
    pending_delivered: list[ReceiptOutcome] = field(default_factory=list)
    finished_earlier: list[tuple[str, ReceiptOutcome]] = field(default_factory=list)
    resumed: bool = False
    repaired: bundlejob.Reconciled | None = None
    node_failures: int = 0


def new_bundle_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def receipts_folder(settings: Facility) -> Path | None:
    return Path(settings.receipts).expanduser() if settings.receipts else None


def pull(
    unlocked: UnlockedDevice,
    *,
    settings: Facility,
    drive: Drive,
    now: datetime,
    progress: Progress | None = None,
) -> PullResult:
    """Visit *settings*' clinic: deliver what waits for it, then pull its flagged instances."""
    progress = progress or NoProgress()
    facility_id = settings.facility_id
    source = parse_source(settings.source, calling_aet=settings.calling_aet)
    result = PullResult(facility_id, source.describe())
    receipts_dir = receipts_folder(settings)
    with Journal.open(unlocked) as journal:
        result.delivery = deliver_outbox(unlocked, journal, drive, facility_id, receipts_dir, now)
        if receipts_dir is not None:
            result.pending_delivered = deliver_pending(unlocked, facility_id, receipts_dir)
        _finish_earlier(unlocked, journal, facility_id, receipts_dir, now, result)
        bundle_id = _resume(unlocked, journal, drive, facility_id, result)
        if bundle_id is None:
            _finish_earlier(unlocked, journal, facility_id, receipts_dir, now, result)
        client = node_client(source) if isinstance(source, NodeSource) else None
        rule = load_rule(settings, source)
        for _round in range(_ROUNDS):
            # it reads a scan's snapshot, and keeps none: its own writes would end it at once
            plan, capacity = plan_visit(
                journal, settings, source, rule, progress, client, keep_snapshot=False
            )
            result.plan, result.capacity = plan, capacity
            if not plan.candidates and not plan.node_studies and bundle_id is None:
                _visit_without_bundle(unlocked, journal, settings, now, result)
                return result
            _check_space(drive, plan)
            if bundle_id is None:
                bundle_id = new_bundle_id(now)
                journal.create_bundle(bundle_id, facility_id, drive.volume_id, now.isoformat())
            writer = _open_writer(drive, bundle_id)
            if client is not None:
                from courier.core.retrieve import copy_node  # imports pynetdicom

                copied = copy_node(
                    journal,
                    writer,
                    bundle_id,
                    plan,
                    client,
                    unlocked.device.center.recipients,
                    progress,
                )
            else:
                copied = copier.copy_files(
                    journal, writer, bundle_id, plan, unlocked.device.center.recipients, progress
                )
            plan.skipped.extend(copied.skipped)
            result.node_failures += copied.node_failures
            count, bad = bundlejob.read_back(journal, writer, bundle_id, progress, copied.verified)
            if not bad:
                break
            bundlejob.forget(journal, writer, bundle_id, bad)
        else:
            raise BundleError(
                f"objects of bundle {bundle_id} read back differently from what was written, "
                "twice: the drive may be failing",
                hint="Use another drive and run the pull again; this bundle was not sealed.",
            )
        if not count:  # a resumed bundle whose objects all had to be dropped, nothing new
            _visit_without_bundle(unlocked, journal, settings, now, result)
            return result
        _seal_and_finish(
            unlocked,
            journal,
            writer,
            bundle_id,
            settings,
            receipts_dir,
            now,
            result,
            progress,
        )
    return result


def _resume(
    unlocked: UnlockedDevice,
    journal: Journal,
    drive: Drive,
    facility_id: str,
    result: PullResult,
) -> str | None:
    """The open bundle of this facility on this drive, made consistent; None if there is none
    (or it turned out to be sealed already)."""
    for other, volume in journal.open_elsewhere(facility_id, drive.volume_id):
        result.warnings.append(
            f"bundle {other} of this clinic is unfinished on another drive (volume "
            f"{volume[:8]}): insert that drive and run the pull again to finish it"
        )
    bundle_id = journal.open_bundle(facility_id, drive.volume_id)
    if bundle_id is None:
        return None
    result.resumed = True
    state = bundlejob.sealed_and_valid(journal, drive, bundle_id)
    if state:
        bundlejob.adopt(unlocked, journal, drive, bundle_id)
        return None
    try:
        if state is False:
            bundlejob.unseal(drive, bundle_id)
        writer = BundleWriter.open(drive.bundles, bundle_id)
        result.repaired = bundlejob.reconcile(journal, writer, bundle_id)
    except OSError as exc:
        raise copier.drive_error(exc, "resume of the bundle") from exc
    return bundle_id


def _open_writer(drive: Drive, bundle_id: str) -> BundleWriter:
    try:
        return BundleWriter.open(drive.bundles, bundle_id)
    except OSError as exc:
        raise copier.drive_error(exc, "start of the bundle") from exc


def space_needed(plan: Plan, block: int) -> int:
    """Bytes the drive must have free for *plan*: each object rounded up to whole blocks
    (a 1 KB object fills a 4 KB block), plus head room for tag files."""
    sizes = [c.file.size + AGE_OVERHEAD for c in plan.candidates]
    return sum(-(-size // block) * block for size in sizes) + RESERVE


def _check_space(drive: Drive, plan: Plan) -> None:
    needed = space_needed(plan, drive.block_size())
    free = drive.free_bytes()
    if needed > free:
        raise DriveFull(
            f"the drive needs {format_bytes(needed)} free for this pull and has "
            f"{format_bytes(free)} ({format_bytes(needed - free)} more are needed)",
            hint="Free space on the drive or insert a larger one, then run the pull again.",
        )


def _visit_summary(
    unlocked: UnlockedDevice,
    settings: Facility,
    now: datetime,
    result: PullResult,
    bundle_id: str | None,
) -> dict[str, Any]:
    """The visit as recorded in the journal and sealed for the receipt."""
    plan = result.plan
    warnings = list(result.warnings)
    if result.capacity is not None and (warning := result.capacity.warning()):
        warnings.insert(0, warning)
    if result.node_failures:
        warnings.append(
            f"{result.node_failures} instances could not be retrieved from the clinic's PACS; "
            "they are taken at the next visit"
        )
    return {
        "facility_id": settings.facility_id,
        "bundle_id": bundle_id,
        "operator": unlocked.device.operator,
        "started": now.isoformat(timespec="seconds"),
        "finished": now.isoformat(timespec="seconds"),
        "source": result.source,
        "rule": plan.rule,
        "files_seen": plan.files_seen,
        "not_selected": plan.not_selected,
        "already_carried": plan.already_carried,
        "confirmed": plan.confirmed,
        "skipped_count": len(plan.skipped),
        "capacity": None if result.capacity is None else result.capacity.to_dict(),
        "warnings": warnings,
        "delivered": len(result.delivery.delivered) if result.delivery else 0,
    }


def _visit_without_bundle(
    unlocked: UnlockedDevice,
    journal: Journal,
    settings: Facility,
    now: datetime,
    result: PullResult,
) -> None:
    visit = _visit_summary(unlocked, settings, now, result, None)
    result.warnings = list(visit["warnings"])
    courierlog.append(
        journal.conn,
        {
            "at": now.isoformat(timespec="seconds"),
            "facility_id": settings.facility_id,
            "bundle_id": None,
            "operator": unlocked.device.operator,
            "objects": 0,
            "studies": 0,
            "bytes": 0,
            "skipped": len(result.plan.skipped),
        },
    )
    journal.record_visit({**visit, "objects": 0, "studies": 0, "bytes": 0})


def _seal_and_finish(
    unlocked: UnlockedDevice,
    journal: Journal,
    writer: BundleWriter,
    bundle_id: str,
    settings: Facility,
    receipts_dir: Path | None,
    now: datetime,
    result: PullResult,
    progress: Progress,
) -> None:
    visit = _visit_summary(unlocked, settings, now, result, bundle_id)
    visit["skipped"] = [{"item": s.relpath, "reason": s.reason} for s in result.plan.skipped]
    objects, studies, _plain_bytes, cipher_bytes = journal.bundle_totals(bundle_id)
    reception = {
        "kind": "reception-log",
        "operator": unlocked.device.operator,
        "facility_id": settings.facility_id,
        "received": now.isoformat(timespec="seconds"),
        "objects": objects,
        "studies": studies,
        **{k: visit[k] for k in ("files_seen", "not_selected", "already_carried")},
        "skipped": len(result.plan.skipped),
        "changed": bundlejob.changed_count(journal, bundle_id),
        "capacity": visit["capacity"],
        "warnings": visit["warnings"],
    }
    progress.phase("seal", None)
    bundlejob.seal(
        unlocked,
        journal,
        writer,
        bundle_id,
        facility_id=settings.facility_id,
        now=now,
        visit=visit,
        reception=reception,
    )
    result.bundle_id = bundle_id
    result.instances, result.studies = objects, studies
    result.payload_bytes = cipher_bytes
    result.changed = int(reception["changed"])
    result.warnings = list(visit["warnings"])
    result.receipt = finish_bundle(unlocked, journal, bundle_id, receipts_dir, now)


def _finish_earlier(
    unlocked: UnlockedDevice,
    journal: Journal,
    facility_id: str,
    receipts_dir: Path | None,
    now: datetime,
    result: PullResult,
) -> None:
    for bundle_id in journal.unfinished(facility_id):
        outcome = finish_bundle(unlocked, journal, bundle_id, receipts_dir, now)
        result.finished_earlier.append((bundle_id, outcome))
