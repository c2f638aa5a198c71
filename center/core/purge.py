"""Deleting expired studies (issue 5): dry run by default, tombstones, shared objects kept.

:func:`purge` is a dry run unless told to execute. Each study is deleted in its own transaction,
which re-checks the decision, writes a tombstone (what was deleted, when, by whom, under which
rule and contract) and an audit entry (PS3.15 event 110105), then removes the catalog rows.
Objects are removed from the store afterwards, and only when no remaining instance references
them; a crash in between leaves unreferenced objects that the next purge removes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from center.core import audit
from center.core.expiry import DUE, StudyState, study_states
from center.core.lock import maintenance_lock
from center.core.retention_facts import catalog_studies
from common.errors import StorageError
from common.progress import NoProgress, Progress
from common.receipts import instance_list_sha256
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.store import ObjectStore


@dataclass(frozen=True)
class Deleted:
    facility_id: str
    study_instance_uid: str
    accession: str
    expiry: date
    rule: str
    instances: int
    bytes: int
    tombstone_id: int
    audit_seq: int


@dataclass
class PurgeReport:
    executed: bool
    due: list[StudyState] = field(default_factory=list)
    deleted: list[Deleted] = field(default_factory=list)
    not_due: dict[str, int] = field(default_factory=dict)  # expired studies kept, by status
    objects_removed: int = 0
    bytes_freed: int = 0


def purge(
    conn: sqlite3.Connection,
    store: ObjectStore,
    *,
    now: datetime,
    operator: str,
    facility_id: str | None = None,
    execute: bool = False,
    progress: Progress | None = None,
    lock_root: Path,
) -> PurgeReport:
    """Delete (with *execute*) every study that :func:`decide` says is due; else a dry run.

    Deleting holds the maintenance lock of the archive in *lock_root*: no import or check runs
    meanwhile (ArchiveBusy if one is running), so no import can catalogue bytes being removed.
    """
    lock = maintenance_lock(lock_root, "purge") if execute else contextlib.nullcontext()
    with lock:
        return _purge(
            conn,
            store,
            now=now,
            operator=operator,
            facility_id=facility_id,
            execute=execute,
            progress=progress,
        )


def _purge(
    conn: sqlite3.Connection,
    store: ObjectStore,
    *,
    now: datetime,
    operator: str,
    facility_id: str | None,
    execute: bool,
    progress: Progress | None,
) -> PurgeReport:
    report = PurgeReport(executed=execute)
    if execute:
        _sweep_tombstoned_objects(conn, store, report)
    for state in study_states(conn, store, now=now, facility_id=facility_id, horizon=now.date()):
        if state.decision.status == DUE:
            report.due.append(state)
        elif state.decision.expired:
            report.not_due[state.decision.status] = report.not_due.get(state.decision.status, 0) + 1
    if not execute:
        return report
    progress = progress or NoProgress()
    progress.phase("delete", len(report.due), unit="studies")
    for state in report.due:
        progress.advance(1)
        deleted = _delete_study(conn, store, state.study.study_pk, now=now, operator=operator)
        if deleted is not None:
            report.deleted.append(deleted)
            removed, freed = _remove_unreferenced(conn, store, deleted.tombstone_id)
            report.objects_removed += removed
            report.bytes_freed += freed
    return report


def _delete_study(
    conn: sqlite3.Connection, store: ObjectStore, study_pk: int, *, now: datetime, operator: str
) -> Deleted | None:
    """Delete one study if it is still due, in one transaction; None if it no longer is."""
    with transaction(conn):
        found = catalog_studies(conn, study_pks=[study_pk])
        if not found:
            return None
        state = study_states(conn, store, now=now, studies=found)[0]
        if state.decision.status != DUE or state.contract is None:
            return None
        study, facts = state.study, state.study.facts
        instances = conn.execute(
            "SELECT i.sop_instance_uid, i.sha256, i.size FROM instances i "
            "JOIN series se ON se.series_pk = i.series_pk WHERE se.study_pk = ? "
            "ORDER BY i.sop_instance_uid",
            (study_pk,),
        ).fetchall()
        listed = [(str(uid), str(sha), int(size)) for uid, sha, size in instances]
        digest = instance_list_sha256((uid, sha) for uid, sha, _ in listed)
        size = sum(n for _, _, n in listed)
        rule = state.computed.rule if state.computed.expires >= study.expiry else study.expiry_rule
        entry = audit.record(
            conn,
            at=now,
            operator=operator,
            action="purge",
            event_code=audit.EVENT_STUDY_DELETED,
            target=study.label,
            details={
                "facility_id": facts.facility_id,
                "expiry": state.effective.isoformat(),
                "rule": rule,
                "on_expiry": state.contract.on_expiry,
                "grace_days": state.contract.grace_days,
                "notice_id": state.decision.notice_id,
                "instances": len(listed),
                "bytes": size,
                "instance_list_sha256": digest,
            },
        )
        cursor = conn.execute(
            "INSERT INTO tombstones (facility_id, study_instance_uid, accession, study_date, "
            "modalities, instance_count, bytes, instance_list_sha256, instances, expiry, "
            "expiry_rule, on_expiry, grace_days, notice_id, deleted_at, deleted_by, audit_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                facts.facility_id,
                facts.study_instance_uid,
                study.accession,
                facts.study_date,
                "/".join(sorted(facts.modalities)),
                len(listed),
                size,
                digest,
                json.dumps(listed),
                state.effective.isoformat(),
                rule,
                state.contract.on_expiry,
                state.contract.grace_days,
                state.decision.notice_id,
                now.isoformat(timespec="seconds"),
                operator,
                entry.seq,
            ),
        )
        conn.execute(
            "DELETE FROM instances WHERE series_pk IN "
            "(SELECT series_pk FROM series WHERE study_pk = ?)",
            (study_pk,),
        )
        conn.execute("DELETE FROM series WHERE study_pk = ?", (study_pk,))
        conn.execute("DELETE FROM studies WHERE study_pk = ?", (study_pk,))
        conn.execute(
            "DELETE FROM retention_facts WHERE facility_id = ? AND study_instance_uid = ?",
            (facts.facility_id, facts.study_instance_uid),
        )
        conn.execute(
            "DELETE FROM patients WHERE patient_pk = ? AND NOT EXISTS "
            "(SELECT 1 FROM studies WHERE patient_pk = ?)",
            (study.patient_pk, study.patient_pk),
        )
    return Deleted(
        facts.facility_id,
        facts.study_instance_uid,
        study.accession,
        state.effective,
        rule,
        len(listed),
        size,
        int(cursor.lastrowid or 0),
        entry.seq,
    )


def _remove_unreferenced(
    conn: sqlite3.Connection, store: ObjectStore, tombstone_id: int
) -> tuple[int, int]:
    """Remove the tombstoned study's objects that no remaining instance references.

    The check and the removal run inside a write transaction, under the maintenance lock
    :func:`purge` holds, so no import can catalogue an instance of the same bytes meanwhile.
    """
    removed = freed = 0
    with transaction(conn):
        row = conn.execute(
            "SELECT instances FROM tombstones WHERE tombstone_id = ?", (tombstone_id,)
        )
        listed = json.loads(row.fetchone()[0])
        for sha in sorted({str(item[1]) for item in listed}):
            if conn.execute("SELECT 1 FROM instances WHERE sha256 = ? LIMIT 1", (sha,)).fetchone():
                continue
            try:
                size = store.remove(sha)
            except StorageError as exc:
                raise StorageError(
                    f"{exc.message} (of a deleted study)",
                    hint="Fix the archive's permissions and run `center expiry purge --yes` "
                    "again: it removes what is left.",
                ) from exc
            if size is not None:
                removed += 1
                freed += size
        conn.execute(
            "UPDATE tombstones SET objects_removed = 1 WHERE tombstone_id = ?", (tombstone_id,)
        )
    return removed, freed


def _sweep_tombstoned_objects(
    conn: sqlite3.Connection, store: ObjectStore, report: PurgeReport
) -> None:
    """Finish earlier purges that stopped between the catalog and the object store."""
    rows = conn.execute("SELECT tombstone_id FROM tombstones WHERE objects_removed = 0")
    for (tombstone_id,) in rows.fetchall():
        removed, freed = _remove_unreferenced(conn, store, int(tombstone_id))
        report.objects_removed += removed
        report.bytes_freed += freed


@dataclass(frozen=True)
class Tombstone:
    tombstone_id: int
    facility_id: str
    study_instance_uid: str
    accession: str
    study_date: str
    modalities: str
    instances: int
    bytes: int
    expiry: str
    rule: str
    on_expiry: str
    notice_id: str | None
    deleted_at: str
    deleted_by: str
    audit_seq: int


def tombstones(conn: sqlite3.Connection, *, facility_id: str | None = None) -> list[Tombstone]:
    """What was deleted, when, by whom and under which rule and contract."""
    rows = conn.execute(
        "SELECT tombstone_id, facility_id, study_instance_uid, accession, study_date, "
        "modalities, instance_count, bytes, expiry, expiry_rule, on_expiry, notice_id, "
        "deleted_at, deleted_by, audit_seq FROM tombstones WHERE (? IS NULL OR facility_id = ?) "
        "ORDER BY tombstone_id",
        (facility_id, facility_id),
    )
    return [Tombstone(*row) for row in rows]
