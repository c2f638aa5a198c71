"""Bundles a courier sealed that never reached the center (`center bundles missing`).

Each imported bundle carries a verified slice of its device's hash-chained visit log
(center/core/courierlog.py): the entries after the checkpoint of the device's previous sealed
bundle (its *base*) up to this bundle's own visit. At import the center records here, in the
import's transaction and without patient data:

* every entry that names a bundle (``bundle_id``): device, log position, bundle id, facility,
  date and instance count (table ``courier_bundles``);
* the base position when it is above 0: the visit entry of the device's previous sealed bundle,
  known by position only until that bundle arrives or another slice names it (an
  *unidentified* row: the format carries the base's position and hash, not its content);
* every operator release (``"action": "release-bundle"``): the released bundle id, facility,
  date and count, and, when the courier released a sealed bundle, the log position and hash of
  that bundle's own visit entry (table ``courier_releases``).

A bundle is missing when the logs name it (or its position) and no bundle of that id has been
imported and the courier did not release it. A released bundle is not missing; it is listed
among the releases. A release that names a position resolves it when the position's hash the
center recorded (``courier_checkpoints``) is the one the release names: the position is the
released bundle, listed among the releases (``log_seq``), not as missing. An unidentified
position is never presumed released otherwise: a release without a position (couriers before
it was carried, an unsealed bundle) or whose hash differs is one the center cannot place, and
the row says which bundle it may be (``maybe_released``) until the bundle arrives (its own
visit entry then names it). A device's bundles the center has no slice about at all are
beyond what it can see.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from center.core import audit
from center.core.courierlog import CourierLogCheck
from common.sqlitedb import transaction

RELEASE_ACTION = "release-bundle"  # courier/core/release.py's courier log action

MISSING_MIGRATIONS = [
    (
        "missing-0001-courier-bundles",
        """
        CREATE TABLE courier_bundles (
            device_id TEXT NOT NULL,
            log_seq INTEGER NOT NULL,
            bundle_id TEXT,
            facility_id TEXT,
            sealed TEXT,
            sealed_by TEXT NOT NULL,
            instances INTEGER,
            learned_from TEXT NOT NULL,
            PRIMARY KEY (device_id, log_seq)
        );
        CREATE INDEX courier_bundles_id ON courier_bundles(bundle_id);
        CREATE TABLE courier_releases (
            device_id TEXT NOT NULL,
            bundle_id TEXT NOT NULL,
            log_seq INTEGER NOT NULL,
            facility_id TEXT NOT NULL,
            released_at TEXT NOT NULL,
            instances INTEGER NOT NULL,
            learned_from TEXT NOT NULL,
            PRIMARY KEY (device_id, log_seq)
        )
        """,
    ),
    (
        # What the bundles imported before this table existed name (their verified reception
        # logs are in bundles.reception): the same rows as record_known_bundles.
        # 'release-bundle' is RELEASE_ACTION (a migration's text never changes).
        "missing-0002-backfill",
        """
        INSERT OR IGNORE INTO courier_releases
        SELECT b.device_id, json_extract(e.value, '$.content.released_bundle_id'),
            json_extract(e.value, '$.content.seq'), json_extract(e.value, '$.content.facility_id'),
            json_extract(e.value, '$.content.at'),
            max(coalesce(json_extract(e.value, '$.content.objects'), 0), 0), b.bundle_id
        FROM bundles b, json_each(b.reception, '$.courier_log.entries') e
        WHERE json_extract(e.value, '$.content.action') = 'release-bundle'
            AND json_extract(e.value, '$.content.released_bundle_id') IS NOT NULL;
        INSERT OR IGNORE INTO courier_bundles
        SELECT b.device_id, json_extract(e.value, '$.content.seq'),
            json_extract(e.value, '$.content.bundle_id'),
            json_extract(e.value, '$.content.facility_id'), json_extract(e.value, '$.content.at'),
            json_extract(e.value, '$.content.at'),
            max(coalesce(json_extract(e.value, '$.content.objects'), 0), 0), b.bundle_id
        FROM bundles b, json_each(b.reception, '$.courier_log.entries') e
        WHERE json_extract(e.value, '$.content.bundle_id') IS NOT NULL
            AND coalesce(json_extract(e.value, '$.content.action'), '') != 'release-bundle';
        INSERT OR IGNORE INTO courier_bundles (device_id, log_seq, sealed_by, learned_from)
        SELECT device_id, json_extract(reception, '$.courier_log.base.seq'),
            json_extract(reception, '$.courier_log.entries[0].content.at'), bundle_id
        FROM bundles WHERE json_extract(reception, '$.courier_log.base.seq') > 0
        """,
    ),
    (
        # A release names the log position and hash of the released bundle's visit entry
        # (couriers since this migration); the backfill reads them from the receptions kept.
        "missing-0003-release-positions",
        """
        ALTER TABLE courier_releases ADD COLUMN released_seq INTEGER;
        ALTER TABLE courier_releases ADD COLUMN released_hash TEXT;
        UPDATE courier_releases AS r SET
            released_seq = (
                SELECT json_extract(e.value, '$.content.released_log_seq')
                FROM bundles b, json_each(b.reception, '$.courier_log.entries') e
                WHERE b.device_id = r.device_id
                    AND json_extract(e.value, '$.content.seq') = r.log_seq
                    AND json_type(e.value, '$.content.released_log_seq') = 'integer'
                    AND json_type(e.value, '$.content.released_log_hash') = 'text'
                LIMIT 1),
            released_hash = (
                SELECT json_extract(e.value, '$.content.released_log_hash')
                FROM bundles b, json_each(b.reception, '$.courier_log.entries') e
                WHERE b.device_id = r.device_id
                    AND json_extract(e.value, '$.content.seq') = r.log_seq
                    AND json_type(e.value, '$.content.released_log_seq') = 'integer'
                    AND json_type(e.value, '$.content.released_log_hash') = 'text'
                LIMIT 1)
        """,
    ),
]


@dataclass(frozen=True)
class KnownBundle:
    """A bundle the courier logs name, as the center knows it."""

    device_id: str
    log_seq: int
    bundle_id: str | None  # None: identified by its log position only
    facility_id: str | None
    sealed: str | None  # the visit entry's date, when its content was seen
    sealed_by: str  # sealed on or before this date
    instances: int | None
    age_days: int
    maybe_released: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Release:
    """An operator's release of a bundle, as a courier log shows it."""

    device_id: str
    bundle_id: str
    facility_id: str
    released_at: str
    instances: int
    imported: bool  # the released bundle arrived after all
    log_seq: int | None = None  # the position of its visit entry the release resolved

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MissingReport:
    """What `center bundles missing` lists."""

    missing: list[KnownBundle]
    released: list[Release]
    older_than: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "older_than_days": self.older_than,
            "missing": [m.to_dict() for m in self.missing],
            "released": [r.to_dict() for r in self.released],
        }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _release_position(content: dict[str, Any]) -> tuple[int | None, str | None]:
    """The released bundle's visit position and hash a release entry names, or (None, None)."""
    seq, digest = content.get("released_log_seq"), content.get("released_log_hash")
    if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 and _text(digest):
        return seq, str(digest)
    return None, None


def _resolved(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """(device, released bundle) -> the log position its release resolves: the release names
    the position and the hash the center recorded there (from any verified slice)."""
    return {
        (str(r[0]), str(r[1])): int(r[2])
        for r in conn.execute(
            "SELECT r.device_id, r.bundle_id, r.released_seq FROM courier_releases r "
            "JOIN courier_checkpoints c ON c.device_id = r.device_id "
            "AND c.seq = r.released_seq AND c.hash = r.released_hash"
        )
    }


def record_known_bundles(
    conn: sqlite3.Connection,
    device_id: str,
    bundle_id: str,
    reception: dict[str, Any],
    log: CourierLogCheck,
) -> None:
    """Record what a verified courier log names (inside the import's transaction).

    *reception* holds the ``courier_log`` that :func:`check_courier_log` verified as *log*.
    """
    block = reception["courier_log"]
    entries = [item["content"] for item in block["entries"]]
    base = log.positions[0][0]
    if base > 0:
        conn.execute(
            "INSERT INTO courier_bundles (device_id, log_seq, sealed_by, learned_from) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (device_id, log_seq) DO NOTHING",
            (device_id, base, str(entries[0].get("at", "")), bundle_id),
        )
    for content in entries:
        seq, at = int(content["seq"]), str(content.get("at", ""))
        named = _text(content.get("bundle_id"))
        released = _text(content.get("released_bundle_id"))
        facility = str(content.get("facility_id", ""))
        if content.get("action") == RELEASE_ACTION and released is not None:
            position, digest = _release_position(content)
            conn.execute(
                "INSERT INTO courier_releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (device_id, log_seq) DO NOTHING",
                (
                    device_id,
                    released,
                    seq,
                    facility,
                    at,
                    _count(content.get("objects")),
                    bundle_id,
                    position,
                    digest,
                ),
            )
        elif named is not None:
            conn.execute(
                "INSERT INTO courier_bundles VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (device_id, log_seq) DO UPDATE SET bundle_id = excluded.bundle_id, "
                "facility_id = excluded.facility_id, sealed = excluded.sealed, "
                "sealed_by = excluded.sealed, instances = excluded.instances",
                (
                    device_id,
                    seq,
                    named,
                    facility,
                    at,
                    at,
                    _count(content.get("objects")),
                    bundle_id,
                ),
            )


def _days(text: str, today: date) -> int:
    try:
        return max((today - datetime.fromisoformat(text).date()).days, 0)
    except ValueError:
        return 0


def find_missing(
    conn: sqlite3.Connection, *, now: datetime, older_than: int | None = None
) -> MissingReport:
    """Bundles the courier logs name that were never imported nor released, oldest first,
    and the releases the logs show (reads only)."""
    imported = {str(r[0]) for r in conn.execute("SELECT bundle_id FROM bundles")}
    resolved = _resolved(conn)
    by_bundle = {
        (str(r[0]), str(r[1])): Release(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            str(r[3]),
            int(r[4]),
            str(r[1]) in imported,
            resolved.get((str(r[0]), str(r[1]))),
        )
        for r in conn.execute(
            "SELECT device_id, bundle_id, facility_id, released_at, instances "
            "FROM courier_releases ORDER BY released_at DESC, device_id, log_seq DESC"
        )
    }  # a bundle released again (more of it) counts once, at its first release
    releases = sorted(by_bundle.values(), key=lambda r: (r.released_at, r.device_id))
    rows = conn.execute(
        "SELECT device_id, log_seq, bundle_id, facility_id, sealed, sealed_by, instances "
        "FROM courier_bundles ORDER BY device_id, log_seq"
    ).fetchall()
    # A resumed sealing with other counts appends a second entry: the latest one counts.
    latest = {(str(r[0]), r[2]): int(r[1]) for r in rows if r[2] is not None}
    placed = {(device, bundle) for device, bundle in latest} | set(resolved)
    released = {(r.device_id, r.bundle_id) for r in releases}
    released_at = {(device, seq) for (device, _), seq in resolved.items()}
    today, missing = now.date(), []
    for r in rows:
        device, seq, bundle = str(r[0]), int(r[1]), r[2]
        if bundle is not None and (
            bundle in imported or (device, bundle) in released or latest[(device, bundle)] != seq
        ):
            continue
        if bundle is None and (device, seq) in released_at:
            continue
        maybe = []
        if bundle is None:  # which unplaced releases it might be
            maybe = sorted(
                rel.bundle_id
                for rel in releases
                if rel.device_id == device
                and (device, rel.bundle_id) not in placed
                and not rel.imported
            )
        age = _days(str(r[4] or r[5]), today)
        if older_than is not None and age <= older_than:
            continue
        missing.append(KnownBundle(device, seq, bundle, r[3], r[4], str(r[5]), r[6], age, maybe))
    missing.sort(key=lambda m: (m.sealed or m.sealed_by, m.device_id, m.log_seq))
    return MissingReport(missing, releases, older_than)


def missing_bundles(
    conn: sqlite3.Connection, *, operator: str, now: datetime, older_than: int | None = None
) -> MissingReport:
    """`center bundles missing`: :func:`find_missing`, recorded in the audit log."""
    report = find_missing(conn, now=now, older_than=older_than)
    with transaction(conn):
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="bundles-missing",
            event_code=audit.EVENT_QUERY,
            target="bundles",
            details={
                "older_than_days": older_than,
                "missing": len(report.missing),
                "released": len(report.released),
            },
        )
    return report
