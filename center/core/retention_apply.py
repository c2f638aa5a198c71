"""Applying the retention rules to the catalog, and explaining one study's expiry (issue 5).

:func:`apply_rules` recomputes the expiry of every study (or those of one facility, or one
study) from the active rules and the catalog, and returns a before/after report; unless it is
a dry run, the changes are written in one transaction together with one audit entry listing
them. An expiry never becomes earlier than the latest one promised to the clinic on a storage
receipt (contract C3): such a study is kept until the promised date, unless the operator gives
an explicit reason, which is recorded (``promise_waivers``) and audited. Applying twice in a
row changes nothing the second time.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from center.core import audit
from center.core.expiry import NoticeState, StudyState, notices_of, study_states
from center.core.holds import ActiveHolds, Hold, list_holds
from center.core.lock import maintenance_lock
from center.core.retention import ActiveRules, active_rules
from center.core.retention_facts import (
    CatalogStudy,
    catalog_studies,
    compute,
    refresh_recorded,
    transaction_of,
    with_context,
)
from center.core.studyref import StudyKey
from common.errors import ConfigError
from common.progress import NoProgress, Progress
from common.retention import Expiry

if TYPE_CHECKING:
    from center.core.store import ObjectStore

KEPT_AT_PROMISE = "kept at the date promised on a storage receipt"
WAIVED = "earlier than promised: the promise was waived"
BATCH_PATIENTS = 2000  # patients per batch: bounds memory on large catalogs


def promise_floors(
    conn: sqlite3.Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], date]:
    """The latest promised expiry of each (facility, study UID) not waived by an operator."""
    wanted = set(keys)
    uids = json.dumps(sorted({uid for _, uid in wanted}))
    waived: dict[tuple[str, str], str] = {}
    for facility, uid, through in conn.execute(
        "SELECT facility_id, study_instance_uid, MAX(waived_through) FROM promise_waivers "
        "WHERE study_instance_uid IN (SELECT value FROM json_each(?)) "
        "GROUP BY facility_id, study_instance_uid",
        (uids,),
    ):
        waived[(str(facility), str(uid))] = str(through)
    floors: dict[tuple[str, str], date] = {}
    for facility, uid, expiry in conn.execute(
        "SELECT facility_id, study_instance_uid, expiry FROM receipt_promises "
        "WHERE study_instance_uid IN (SELECT value FROM json_each(?))",
        (uids,),
    ):
        key = (str(facility), str(uid))
        if key not in wanted or str(expiry) <= waived.get(key, ""):
            continue
        day = date.fromisoformat(str(expiry))
        floors[key] = max(day, floors.get(key, day))
    return floors


def _batches(
    conn: sqlite3.Connection,
    store: ObjectStore | None,
    rules: ActiveRules,
    *,
    facility_id: str | None,
    study: StudyKey | None,
) -> Iterator[tuple[list[CatalogStudy], dict[int, Expiry]]]:
    """The studies in scope with their computed expiry, a few thousand patients at a time
    (every study of a patient is in the same batch, so the batch is its own context)."""
    if study is not None:
        targets = catalog_studies(conn, study_pks=[study.study_pk])
        context = with_context(conn, targets)
        if store is not None:
            targets = refresh_recorded(conn, store, rules.ruleset, targets)
        yield targets, compute(rules.ruleset, targets, context)
        return
    patients = [
        int(row[0])
        for row in conn.execute(
            "SELECT DISTINCT patient_pk FROM studies WHERE (? IS NULL OR facility_id = ?) "
            "ORDER BY patient_pk",
            (facility_id, facility_id),
        )
    ]
    for start in range(0, len(patients), BATCH_PATIENTS):
        targets = catalog_studies(conn, patient_pks=patients[start : start + BATCH_PATIENTS])
        if store is not None:
            targets = refresh_recorded(conn, store, rules.ruleset, targets)
        yield targets, compute(rules.ruleset, targets, targets)


@dataclass(frozen=True)
class Change:
    facility_id: str
    study_instance_uid: str
    accession: str
    label: str
    before: date
    after: date
    computed: date
    rule_before: str
    rule_after: str
    note: str
    held: bool


@dataclass
class ApplyReport:
    ruleset: str
    sha256: str
    origin: str
    studies: int
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    kept_by_promise: int = 0
    waived: int = 0
    audit_seq: int | None = None


def apply_rules(
    conn: sqlite3.Connection,
    store: ObjectStore | None,
    *,
    now: datetime,
    operator: str,
    facility_id: str | None = None,
    study: StudyKey | None = None,
    override_reason: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    lock_root: Path,
) -> ApplyReport:
    """Recompute and (unless *dry_run*) store the expiry of the studies in scope.

    Writing holds the maintenance lock of the archive in *lock_root*, so no import changes the
    catalog between the computation and the write (ArchiveBusy if one is running).
    """
    if override_reason is not None and not override_reason.strip():
        raise ConfigError("--override-promise needs a reason: it is kept in the audit log")
    lock = contextlib.nullcontext() if dry_run else maintenance_lock(lock_root, "apply rules")
    with lock:
        return _apply(
            conn,
            store,
            now=now,
            operator=operator,
            facility_id=facility_id,
            study=study,
            override_reason=override_reason,
            dry_run=dry_run,
            progress=progress,
        )


def _apply(
    conn: sqlite3.Connection,
    store: ObjectStore | None,
    *,
    now: datetime,
    operator: str,
    facility_id: str | None,
    study: StudyKey | None,
    override_reason: str | None,
    dry_run: bool,
    progress: Progress | None,
) -> ApplyReport:
    rules = active_rules(conn)
    holds = ActiveHolds(conn)
    report = ApplyReport(rules.ruleset.name, rules.ruleset.sha256, rules.origin, 0, dry_run)
    updates: list[tuple[str, str, str, int, int]] = []  # the UPDATE's parameters
    waivers: list[tuple[str, str, str]] = []  # facility, study UID, promise waived
    progress = progress or NoProgress()
    total = conn.execute(
        "SELECT COUNT(*) FROM studies WHERE (? IS NULL OR facility_id = ?)",
        (facility_id, facility_id),
    ).fetchone()[0]
    progress.phase("recompute", 1 if study else int(total), unit="studies")
    for targets, computed in _batches(conn, store, rules, facility_id=facility_id, study=study):
        report.studies += len(targets)
        progress.advance(len(targets))
        floors = promise_floors(
            conn, [(s.facts.facility_id, s.facts.study_instance_uid) for s in targets]
        )
        for target in targets:
            facts, new = target.facts, computed[target.study_pk]
            after, rule, note = new.expires, new.rule, ""
            floor = floors.get((facts.facility_id, facts.study_instance_uid))
            if floor is not None and after < floor:
                if override_reason is None:
                    after, rule, note = floor, f"{new.rule} ({KEPT_AT_PROMISE})", KEPT_AT_PROMISE
                    report.kept_by_promise += 1
                else:
                    note = WAIVED
                    waivers.append((facts.facility_id, facts.study_instance_uid, floor.isoformat()))
                    report.waived += 1
            stored = (target.expiry, target.expiry_rule, target.expiry_anchor, target.flagged)
            if stored == (after, rule, new.anchor, new.study_date_flagged):
                continue
            flagged = int(new.study_date_flagged)
            updates.append((after.isoformat(), rule, new.anchor, flagged, target.study_pk))
            held = holds.of(facts.facility_id, facts.study_instance_uid, facts.patient_id)
            report.changes.append(
                Change(
                    facts.facility_id,
                    facts.study_instance_uid,
                    target.accession,
                    target.label,
                    target.expiry,
                    after,
                    new.expires,
                    target.expiry_rule,
                    rule,
                    note,
                    bool(held),
                )
            )
    if dry_run or not report.changes:
        return report
    with transaction_of(conn):
        conn.executemany(
            "UPDATE studies SET expiry = ?, expiry_rule = ?, expiry_anchor = ?, "
            "study_date_flagged = ? WHERE study_pk = ?",
            updates,
        )
        conn.executemany(
            "INSERT INTO promise_waivers (facility_id, study_instance_uid, waived_through, "
            "reason, at, operator) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (*waiver, str(override_reason).strip(), now.isoformat(timespec="seconds"), operator)
                for waiver in waivers
            ],
        )
        entry = audit.record(
            conn,
            at=now,
            operator=operator,
            action="retention-apply",
            event_code=audit.EVENT_INSTANCES_ACCESSED,
            target=f"ruleset:{rules.ruleset.name}",
            details={
                "sha256": rules.ruleset.sha256,
                "scope": facility_id or (study.label if study else "all"),
                "studies": report.studies,
                "kept_by_promise": report.kept_by_promise,
                "override_reason": override_reason,
                "changes": [
                    {
                        "study": c.label,
                        "before": c.before.isoformat(),
                        "after": c.after.isoformat(),
                        "rule": c.rule_after,
                        **({"note": c.note} if c.note else {}),
                    }
                    for c in report.changes
                ],
            },
        )
        report.audit_seq = entry.seq
    return report


@dataclass(frozen=True)
class Explanation:
    rules: ActiveRules
    study: CatalogStudy
    computed: Expiry
    other_studies: int
    promised: date | None
    state: StudyState
    holds: list[Hold]
    notices: list[NoticeState]


def explain(
    conn: sqlite3.Connection, store: ObjectStore | None, key: StudyKey, *, now: datetime
) -> Explanation:
    """Which rules matched the study and why, its stored and computed expiry, and its fate."""
    rules = active_rules(conn)
    study = catalog_studies(conn, study_pks=[key.study_pk])[0]
    if store is not None:
        study = refresh_recorded(conn, store, rules.ruleset, [study])[0]
    context = with_context(conn, [study])
    state = study_states(conn, None, now=now, studies=[study])[0]
    facts = study.facts
    uid_key = (facts.facility_id, facts.study_instance_uid)
    held = {h.hold_id: h for h in list_holds(conn, facility_id=facts.facility_id)}
    others = 0 if not facts.patient_id.strip() else len(context) - 1
    return Explanation(
        rules=rules,
        study=study,
        computed=compute(rules.ruleset, [study], context)[study.study_pk],
        other_studies=others,
        promised=promise_floors(conn, [uid_key]).get(uid_key),
        state=state,
        holds=[held[n] for n in state.holds if n in held],
        notices=notices_of(conn, [uid_key]).get(uid_key, []),
    )
