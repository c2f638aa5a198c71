"""Catalog rows for the objects of one bundle, in the import's transaction (DESIGN.md s7).

Facility, patient, study, series and instance with the accompanying information, and the
bundle row with its reception information. Each study's expiry comes from the retention hook
(:func:`center.core.retention.expiry_for`, contract C5).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from center.core.retention import expiry_for, import_facts
from common.bundle import format as fmt
from common.bundle.reader import IndexEntry

if TYPE_CHECKING:
    from center.core.archive import Archive


def catalog_bundle(
    archive: Archive,
    info: fmt.BagInfo,
    stored: Iterable[IndexEntry],
    reception: dict[str, Any],
    reception_date: date,
    operator: str,
    now: datetime,
    *,
    status: str,
    stored_count: int,
) -> tuple[int, int]:
    """Catalog rows of the stored objects and the bundle row; (studies, new instances).

    The same SOP Instance UID with other bytes than an instance already cataloged keeps both
    rows, and both are flagged ``conflict`` (DESIGN.md s7).
    """
    conn = archive.conn
    conn.execute(
        "INSERT OR IGNORE INTO facilities (facility_id, created) VALUES (?, ?)",
        (info.facility_id, now.isoformat(timespec="seconds")),
    )
    conn.execute(
        "INSERT INTO bundles (bundle_id, device_id, facility_id, created, imported_at, "
        "imported_by, status, object_count, stored_count, reception_operator, reception_date, "
        "reception) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            info.bundle_id,
            info.device_id,
            info.facility_id,
            info.created,
            now.isoformat(timespec="seconds"),
            operator,
            status,
            info.object_count,
            stored_count,
            str(reception.get("operator", "")),
            reception_date.isoformat(),
            json.dumps(reception, sort_keys=True),
        ),
    )
    studies: set[int] = set()
    new_instances = 0
    for entry in stored:
        h = entry.header
        conn.execute(
            "INSERT INTO patients (facility_id, patient_id, patient_name, birth_date, sex) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (facility_id, patient_id) DO NOTHING",
            (info.facility_id, h.patient_id, h.patient_name, h.birth_date, h.sex),
        )
        patient_pk = conn.execute(
            "SELECT patient_pk FROM patients WHERE facility_id = ? AND patient_id = ?",
            (info.facility_id, h.patient_id),
        ).fetchone()[0]
        expiry = expiry_for(
            conn,
            import_facts(
                conn, archive.store, entry, facility_id=info.facility_id, bundle_id=info.bundle_id
            ),
            reception_date,
        )
        conn.execute(
            "INSERT INTO studies (facility_id, patient_pk, study_instance_uid, accession, "
            "study_id, study_date, study_time, description, modalities, body_part, "
            "first_received, expiry, expiry_rule, expiry_anchor, study_date_flagged) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (facility_id, study_instance_uid) DO NOTHING",
            (
                info.facility_id,
                patient_pk,
                h.study_instance_uid,
                h.accession,
                h.study_id,
                h.study_date,
                h.study_time,
                h.study_description,
                h.modality,
                h.body_part,
                reception_date.isoformat(),
                expiry.expires.isoformat(),
                expiry.rule,
                expiry.anchor,
                int(expiry.study_date_flagged),
            ),
        )
        study_pk, modalities = conn.execute(
            "SELECT study_pk, modalities FROM studies WHERE facility_id = ? "
            "AND study_instance_uid = ?",
            (info.facility_id, h.study_instance_uid),
        ).fetchone()
        if h.modality and h.modality not in modalities.split("/"):
            merged = "/".join(sorted({*modalities.split("/"), h.modality} - {""}))
            conn.execute("UPDATE studies SET modalities = ? WHERE study_pk = ?", (merged, study_pk))
        studies.add(study_pk)
        conn.execute(
            "INSERT INTO series (study_pk, series_instance_uid, modality, description) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (study_pk, series_instance_uid) DO NOTHING",
            (study_pk, h.series_instance_uid, h.modality, h.series_description),
        )
        series_pk = conn.execute(
            "SELECT series_pk FROM series WHERE study_pk = ? AND series_instance_uid = ?",
            (study_pk, h.series_instance_uid),
        ).fetchone()[0]
        conflict = (
            conn.execute(
                "SELECT 1 FROM instances WHERE sop_instance_uid = ? AND sha256 != ?",
                (h.sop_instance_uid, entry.sha256),
            ).fetchone()
            is not None
        )
        inserted = conn.execute(
            "INSERT INTO instances (series_pk, sop_instance_uid, sop_class_uid, "
            "transfer_syntax_uid, sha256, size, bundle_id, bundle_seq, source_relpath, "
            "received, conflict) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (sop_instance_uid, sha256) DO NOTHING",
            (
                series_pk,
                h.sop_instance_uid,
                h.sop_class_uid,
                h.transfer_syntax_uid,
                entry.sha256,
                entry.size,
                info.bundle_id,
                entry.seq,
                entry.source_relpath,
                reception_date.isoformat(),
                int(conflict),
            ),
        ).rowcount
        new_instances += inserted
        if conflict and inserted:
            conn.execute(
                "UPDATE instances SET conflict = 1 WHERE sop_instance_uid = ?",
                (h.sop_instance_uid,),
            )
    return len(studies), new_instances
