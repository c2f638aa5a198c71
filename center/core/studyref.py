"""Naming studies and patients: finding them from what an operator types, and safe log labels.

Operators name a study by its accession or its Study Instance UID, optionally with the
facility; a patient by patient ID and facility. Audit entries and error messages never carry
patient data: they name a study or patient by a short keyed-free hash (:func:`study_label`,
:func:`patient_label`) that the center can recompute from the catalog.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from common.errors import PatientNotFound, StudyAmbiguous, StudyNotFound


def study_label(facility_id: str, study_uid: str) -> str:
    """``study:<12 hex>``: a stable, data-free label for logs."""
    digest = hashlib.sha256(f"study\0{facility_id}\0{study_uid}".encode()).hexdigest()
    return f"study:{digest[:12]}"


def patient_label(facility_id: str, patient_id: str) -> str:
    """``patient:<12 hex>``: a stable, data-free label for logs."""
    digest = hashlib.sha256(f"patient\0{facility_id}\0{patient_id}".encode()).hexdigest()
    return f"patient:{digest[:12]}"


@dataclass(frozen=True)
class StudyKey:
    study_pk: int
    facility_id: str
    study_instance_uid: str
    accession: str
    patient_pk: int
    patient_id: str

    @property
    def label(self) -> str:
        return study_label(self.facility_id, self.study_instance_uid)


def find_study(conn: sqlite3.Connection, ref: str, facility_id: str | None = None) -> StudyKey:
    """The catalogued study whose Study Instance UID or accession is *ref*.

    A UID match wins over accession matches. Raises StudyNotFound, or StudyAmbiguous when an
    accession names several studies (add the facility, or use the UID).
    """
    text = ref.strip()
    sql = (
        "SELECT st.study_pk, st.facility_id, st.study_instance_uid, st.accession, "
        "st.patient_pk, p.patient_id FROM studies st JOIN patients p USING (patient_pk) "
        "WHERE {} AND (? IS NULL OR st.facility_id = ?) ORDER BY st.facility_id, st.study_pk"
    )
    for column in ("st.study_instance_uid", "st.accession"):
        rows = conn.execute(sql.format(f"{column} = ?"), (text, facility_id, facility_id))
        found = [StudyKey(*row) for row in rows]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            facilities = sorted({k.facility_id for k in found})
            raise StudyAmbiguous(
                f"{len(found)} studies have the accession {text!r} "
                f"(facilities: {', '.join(facilities)})"
            )
    where = f" at facility {facility_id}" if facility_id else ""
    raise StudyNotFound(
        f"no catalogued study has the accession or Study Instance UID {text!r}{where}"
    )


def find_patient(conn: sqlite3.Connection, facility_id: str, patient_id: str) -> int:
    """The patient row of *patient_id* at *facility_id*; PatientNotFound if none."""
    row = conn.execute(
        "SELECT patient_pk FROM patients WHERE facility_id = ? AND patient_id = ?",
        (facility_id, patient_id),
    ).fetchone()
    if row is None:
        raise PatientNotFound(
            f"facility {facility_id} has no catalogued study of the patient ID given"
        )
    return int(row[0])
