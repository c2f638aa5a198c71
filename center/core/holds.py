"""Legal holds: a held study is never deleted, whatever its expiry (DESIGN.md s8).

A hold names one study (facility + Study Instance UID) or a patient (facility + patient ID: it
covers every study of the patient at that facility, including studies that arrive later). It
carries a reason and stays in the catalog after release, with who released it and why.
Placing and releasing holds are audited (PS3.15 event 110103) under data-free labels.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from center.core import audit
from center.core.retention_facts import transaction_of
from center.core.studyref import StudyKey, find_patient, patient_label, study_label
from common.errors import ConfigError, HoldNotFound

STUDY, PATIENT = "study", "patient"


@dataclass(frozen=True)
class Hold:
    hold_id: int
    scope: str
    facility_id: str
    study_instance_uid: str
    patient_id: str
    reason: str
    placed_at: str
    placed_by: str
    released_at: str | None
    released_by: str | None
    release_reason: str | None
    accession: str = ""  # of a study hold, when the study is catalogued

    @property
    def label(self) -> str:
        if self.scope == STUDY:
            return study_label(self.facility_id, self.study_instance_uid)
        return patient_label(self.facility_id, self.patient_id)

    @property
    def active(self) -> bool:
        return self.released_at is None


_SELECT = (
    "SELECT h.hold_id, h.scope, h.facility_id, h.study_instance_uid, h.patient_id, h.reason, "
    "h.placed_at, h.placed_by, h.released_at, h.released_by, h.release_reason, "
    "COALESCE(st.accession, '') FROM legal_holds h LEFT JOIN studies st "
    "ON h.scope = 'study' AND st.facility_id = h.facility_id "
    "AND st.study_instance_uid = h.study_instance_uid"
)


def _reason(text: str, option: str) -> str:
    if not text.strip():
        raise ConfigError(f"{option} is required and cannot be empty: it is kept in the audit log")
    return text.strip()


def add_hold(
    conn: sqlite3.Connection,
    *,
    reason: str,
    operator: str,
    now: datetime,
    study: StudyKey | None = None,
    facility_id: str = "",
    patient_id: str = "",
) -> Hold:
    """Hold *study*, or every study of *patient_id* at *facility_id*. Audited."""
    why = _reason(reason, "--reason")
    if study is not None:
        scope, facility_id, uid, patient_id = STUDY, study.facility_id, study.study_instance_uid, ""
    else:
        find_patient(conn, facility_id, patient_id)
        scope, uid = PATIENT, ""
    with transaction_of(conn):
        cursor = conn.execute(
            "INSERT INTO legal_holds (scope, facility_id, study_instance_uid, patient_id, "
            "reason, placed_at, placed_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (scope, facility_id, uid, patient_id, why, now.isoformat(timespec="seconds"), operator),
        )
        hold = get_hold(conn, int(cursor.lastrowid or 0))
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="hold-add",
            event_code=audit.EVENT_INSTANCES_ACCESSED,
            target=hold.label,
            details={
                "hold_id": hold.hold_id,
                "scope": scope,
                "facility_id": facility_id,
                "reason": why,
            },
        )
    return hold


def release_hold(
    conn: sqlite3.Connection, hold_id: int, *, reason: str, operator: str, now: datetime
) -> Hold:
    """Release an active hold, keeping it on record with who released it and why. Audited."""
    why = _reason(reason, "--reason")
    with transaction_of(conn):
        hold = get_hold(conn, hold_id)
        if not hold.active:
            raise HoldNotFound(f"hold {hold_id} was already released on {hold.released_at}")
        conn.execute(
            "UPDATE legal_holds SET released_at = ?, released_by = ?, release_reason = ? "
            "WHERE hold_id = ?",
            (now.isoformat(timespec="seconds"), operator, why, hold_id),
        )
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="hold-remove",
            event_code=audit.EVENT_INSTANCES_ACCESSED,
            target=hold.label,
            details={"hold_id": hold_id, "scope": hold.scope, "reason": why},
        )
        return get_hold(conn, hold_id)


def get_hold(conn: sqlite3.Connection, hold_id: int) -> Hold:
    row = conn.execute(_SELECT + " WHERE h.hold_id = ?", (hold_id,)).fetchone()
    if row is None:
        raise HoldNotFound(f"there is no hold number {hold_id}")
    return Hold(*row)


def list_holds(
    conn: sqlite3.Connection, *, include_released: bool = False, facility_id: str | None = None
) -> list[Hold]:
    sql = _SELECT + " WHERE (? OR h.released_at IS NULL) AND (? IS NULL OR h.facility_id = ?)"
    rows = conn.execute(sql + " ORDER BY h.hold_id", (include_released, facility_id, facility_id))
    return [Hold(*row) for row in rows]


class ActiveHolds:
    """The active holds, to ask "is this study held?" for many studies at once."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.by_study: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.by_patient: dict[tuple[str, str], list[int]] = defaultdict(list)
        for hold in list_holds(conn):
            if hold.scope == STUDY:
                self.by_study[(hold.facility_id, hold.study_instance_uid)].append(hold.hold_id)
            else:
                self.by_patient[(hold.facility_id, hold.patient_id)].append(hold.hold_id)

    def of(self, facility_id: str, study_uid: str, patient_id: str) -> list[int]:
        """Numbers of the active holds covering the study (empty when it is not held)."""
        return sorted(
            self.by_study.get((facility_id, study_uid), [])
            + self.by_patient.get((facility_id, patient_id), [])
        )
