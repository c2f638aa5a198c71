"""`courier bundle list` and `courier bundle release`: the bundles this laptop made, and the
operator's release of one that will never reach the center.

The journal counts an instance as carried once it is durable in a bundle on a drive; only a
storage receipt confirms it stored. When a drive is lost in transit, or the center refuses a
bundle whole (so no storage receipt ever comes for it), the operator releases the bundle: its
objects that no storage receipt confirms stop counting as carried and their files' recorded
decisions are forgotten (:meth:`Journal.release_in_transaction`, as a storage receipt that
leaves objects out does), so the next pull of the clinic takes them again. Confirmed objects
stay carried. An unfinished (never sealed) bundle released is no longer resumed nor pointed out
as unfinished on another drive.

The release, a ``bundle_releases`` row (who, when, why, how many) and an entry of the
hash-chained courier log (courier/core/courierlog.py, carried to the center in the next
bundle) are committed in one transaction. None of them holds patient data: counts, ids, the
operator's name and the reason the operator typed.

Should the drive turn up after all, the center stores each instance once: the copies carried
again are recognised as already stored (tests/e2e/test_lost_drive.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from common.errors import BundleNotInJournal, ConfigError, NothingToRelease
from common.sqlitedb import connect, migrate, transaction
from courier.core import courierlog
from courier.core.device import Device, UnlockedDevice
from courier.core.journal import Journal
from courier.core.journal_schema import MIGRATIONS

RELEASE_DOCUMENT = "operator-release"  # the document id of the objects an operator released
RELEASE_ACTION = "release-bundle"  # the courier log entry's action
MAX_REASON = 200

_CONFIRMED = (
    "EXISTS (SELECT 1 FROM confirmed c WHERE c.sop_key = o.sop_key "
    "AND c.plain_sha256 = o.plain_sha256)"
)
_RELEASED = "EXISTS (SELECT 1 FROM released r WHERE r.bundle_id = o.bundle_id AND r.seq = o.seq)"
_SUMMARY = f"""
SELECT b.bundle_id, b.facility_id, b.volume_id, b.status, b.created, b.sealed_at,
    (SELECT COUNT(*) FROM objects o WHERE o.bundle_id = b.bundle_id),
    (SELECT COUNT(DISTINCT o.study_key) FROM objects o WHERE o.bundle_id = b.bundle_id),
    (SELECT COUNT(*) FROM objects o WHERE o.bundle_id = b.bundle_id AND {_CONFIRMED}),
    (SELECT COUNT(*) FROM released r WHERE r.bundle_id = b.bundle_id),
    EXISTS (SELECT 1 FROM bundle_releases g WHERE g.bundle_id = b.bundle_id)
FROM bundles b"""  # noqa: S608 - constants only


@dataclass(frozen=True)
class BundleSummary:
    """One bundle of the journal, with what became of its instances."""

    bundle_id: str
    facility_id: str
    volume_id: str
    status: str  # 'open' (never sealed) or 'sealed'
    created: str
    sealed_at: str | None
    instances: int
    studies: int
    confirmed: int  # confirmed stored by a storage receipt (of this bundle or another)
    released: int  # no longer counted as carried (by a storage receipt or an operator)
    released_by_operator: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReleaseRecord:
    """An operator's release of a bundle, as recorded."""

    bundle_id: str
    facility_id: str
    released_at: str
    operator: str
    reason: str
    instances: int
    studies: int
    log_seq: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReleasePlan:
    """What releasing a bundle would do: *instances* of *studies* not confirmed stored."""

    bundle: BundleSummary
    instances: int
    studies: int
    earlier: list[ReleaseRecord] = field(default_factory=list)


@dataclass(frozen=True)
class ReleaseResult:
    plan: ReleasePlan
    released_instances: int = 0
    released_studies: int = 0
    record: ReleaseRecord | None = None
    already_released: bool = False  # nothing more to release: an earlier release took it all
    cancelled: bool = False  # the operator said no

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.plan.bundle.to_dict(),
            "released_instances": self.released_instances,
            "released_studies": self.released_studies,
            "record": None if self.record is None else self.record.to_dict(),
            "already_released": self.already_released,
            "cancelled": self.cancelled,
            "earlier_releases": [r.to_dict() for r in self.plan.earlier],
        }


def _summary(row: sqlite3.Row | tuple[Any, ...]) -> BundleSummary:
    return BundleSummary(
        bundle_id=str(row[0]),
        facility_id=str(row[1]),
        volume_id=str(row[2]),
        status=str(row[3]),
        created=str(row[4]),
        sealed_at=None if row[5] is None else str(row[5]),
        instances=int(row[6]),
        studies=int(row[7]),
        confirmed=int(row[8]),
        released=int(row[9]),
        released_by_operator=bool(row[10]),
    )


def bundle_summaries(
    conn: sqlite3.Connection, facility_id: str | None = None
) -> list[BundleSummary]:
    """Every bundle of the journal (or of one facility), oldest first."""
    query, args = _SUMMARY, ()
    if facility_id is not None:
        query, args = query + " WHERE b.facility_id = ?", (facility_id,)  # type: ignore[assignment]
    return [_summary(r) for r in conn.execute(query + " ORDER BY b.created, b.bundle_id", args)]


def list_bundles(device: Device, facility_id: str | None = None) -> list[BundleSummary]:
    """`courier bundle list`: needs no passphrase (counts and ids only)."""
    path = device.home.journal
    if not path.exists():
        return []
    conn = connect(path)
    try:
        migrate(conn, MIGRATIONS, name="courier journal")
        return bundle_summaries(conn, facility_id)
    finally:
        conn.close()


def release_records(
    conn: sqlite3.Connection, *, bundle_id: str | None = None, facility_id: str | None = None
) -> list[ReleaseRecord]:
    """Operators' releases, oldest first: of one bundle, one facility, or all."""
    query = (
        "SELECT g.bundle_id, b.facility_id, g.released_at, g.operator, g.reason, g.instances, "
        "g.studies, g.log_seq FROM bundle_releases g JOIN bundles b USING (bundle_id)"
    )
    where, args = [], []
    for column, value in (("g.bundle_id", bundle_id), ("b.facility_id", facility_id)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if where:
        query += " WHERE " + " AND ".join(where)
    return [ReleaseRecord(*r) for r in conn.execute(query + " ORDER BY g.release_id", args)]


def release_plan(conn: sqlite3.Connection, bundle_id: str) -> ReleasePlan:
    """What `courier bundle release` would release; raises if the journal has no such bundle."""
    row = conn.execute(_SUMMARY + " WHERE b.bundle_id = ?", (bundle_id,)).fetchone()
    if row is None:
        raise BundleNotInJournal(f"this laptop's journal has no bundle {bundle_id}")
    count = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT study_key) FROM objects o "  # noqa: S608 - constants
        f"WHERE o.bundle_id = ? AND NOT {_RELEASED} AND NOT {_CONFIRMED}",
        (bundle_id,),
    ).fetchone()
    return ReleasePlan(
        _summary(row), int(count[0]), int(count[1]), release_records(conn, bundle_id=bundle_id)
    )


def check_reason(reason: str) -> str:
    """The reason, trimmed: one line of at most MAX_REASON characters, not empty."""
    text = reason.strip()
    if not text:
        raise ConfigError(
            "the release reason is empty", hint="Say why, e.g. --reason 'drive lost'."
        )
    if len(text) > MAX_REASON or any(ord(ch) < 32 for ch in text):
        raise ConfigError(
            f"the release reason must be one line of at most {MAX_REASON} characters",
            hint="Shorten it (it is recorded in the courier log; name no patient in it).",
        )
    return text


def visit_position(conn: sqlite3.Connection, bundle_id: str) -> dict[str, Any]:
    """The courier log position and hash of a sealed bundle's own visit entry (the checkpoint
    the bundle carries), as ``released_log_seq`` and ``released_log_hash``; empty for a bundle
    never sealed.

    The center knows a bundle that never arrived by this position only (a later bundle's log
    starts at it), so a release that names it lets the center resolve the position. An unsealed
    bundle carries no checkpoint: no later bundle's log starts at its entry, so the center never
    lists it by position (a visit entry it did get into travels in a later slice naming the
    bundle by id, which the release's ``released_bundle_id`` covers).
    """
    row = conn.execute(
        "SELECT log_seq, log_hash FROM bundles WHERE bundle_id = ? AND status = 'sealed' "
        "AND log_seq IS NOT NULL AND log_hash IS NOT NULL",
        (bundle_id,),
    ).fetchone()
    if row is None:
        return {}
    return {"released_log_seq": int(row[0]), "released_log_hash": str(row[1])}


def release_bundle(
    unlocked: UnlockedDevice,
    bundle_id: str,
    *,
    reason: str,
    now: datetime,
    confirm: Callable[[ReleasePlan], bool] | None = None,
) -> ReleaseResult:
    """Release the objects of *bundle_id* that no storage receipt confirms, so the next pull
    carries them again; record it (reason, date, counts) in the journal and the courier log.

    *confirm* is shown the plan first and may say no (then nothing changes). A sealed bundle
    whose objects are all confirmed raises :class:`NothingToRelease`; one whose unconfirmed
    objects were all released already returns ``already_released`` and changes nothing.
    """
    text = check_reason(reason)
    with Journal.open(unlocked) as journal:
        plan = release_plan(journal.conn, bundle_id)
        summary = plan.bundle
        # An unfinished bundle is released even with nothing left to release, so that pulls
        # stop asking for its drive.
        abandon = summary.status == "open" and not summary.released_by_operator
        if not plan.instances and not abandon:
            if summary.released:
                return ReleaseResult(plan, already_released=True)
            raise NothingToRelease(
                f"every instance of bundle {bundle_id} ({summary.instances}) is confirmed stored "
                "by the center"
            )
        if confirm is not None and not confirm(plan):
            return ReleaseResult(plan, cancelled=True)
        at = now.isoformat(timespec="seconds")
        operator = unlocked.device.operator
        with transaction(journal.conn):
            instances, studies = journal.release_in_transaction(bundle_id, RELEASE_DOCUMENT, at)
            entry = courierlog.append_in_transaction(
                journal.conn,
                {
                    "at": at,
                    "action": RELEASE_ACTION,
                    "facility_id": summary.facility_id,
                    "bundle_id": None,
                    "released_bundle_id": bundle_id,
                    "operator": operator,
                    "objects": instances,
                    "studies": studies,
                    "reason": text,
                    **visit_position(journal.conn, bundle_id),
                },
            )
            record = ReleaseRecord(
                bundle_id, summary.facility_id, at, operator, text, instances, studies, entry.seq
            )
            journal.conn.execute(
                "INSERT INTO bundle_releases (bundle_id, released_at, operator, reason, "
                "instances, studies, log_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (bundle_id, at, operator, text, instances, studies, entry.seq),
            )
    return ReleaseResult(plan, instances, studies, record)
