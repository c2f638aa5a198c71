"""Catalog rows for the objects of one bundle, in the import's transaction (DESIGN.md s7).

Facility, patient, study, series and instance with the accompanying information, and the
bundle row with its reception information. Each study's expiry comes from the retention hook
(:func:`center.core.retention.expiry_for`, contract C5).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from center.core.retention import active_rules, adds_nothing, expiry_for, import_facts
from common.bundle import format as fmt
from common.bundle.reader import IndexEntry

if TYPE_CHECKING:
    from center.core.archive import Archive
    from common.dicomhdr import InstanceHeader
    from common.retention import StudyFacts


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
    rows = _BundleRows(archive, info, reception_date)
    for entry in stored:
        rows.add(entry)
    return len(rows.studies), rows.new_instances


@dataclass
class _Study:
    """A study the bundle's instances go to: its row's key and modalities, and the facts of
    the instances this bundle catalogued in it (None until one was)."""

    pk: int
    modalities: str
    facts: StudyFacts | None = None


class _BundleRows:
    """The catalog rows of one bundle's instances, in the import's transaction.

    Keys an instance looked up (patient, study, series) are kept for the next instances, and
    the rules are read once: nothing else changes them within the transaction. An instance
    that adds nothing to the facts its study's earlier instances in this bundle brought
    (:func:`adds_nothing`, the common case of the second and later instances of a study)
    cannot change any expiry: :func:`expiry_for` would find the study unchanged and write
    nothing, so it is not asked, and its queries are saved.
    """

    def __init__(self, archive: Archive, info: fmt.BagInfo, reception_date: date) -> None:
        self.conn = archive.conn
        self.store = archive.store
        self.info = info
        self.reception_date = reception_date
        self.rules = active_rules(self.conn).ruleset
        self.patients: dict[str, int] = {}
        self.studies: dict[str, _Study] = {}
        self.series: dict[tuple[int, str], int] = {}
        self.new_instances = 0

    def add(self, entry: IndexEntry) -> None:
        """Catalog one stored instance: patient, study (its expiry), series, instance."""
        h = entry.header
        patient_pk = self._patient_pk(h)
        facts = import_facts(
            self.conn,
            self.store,
            entry,
            facility_id=self.info.facility_id,
            bundle_id=self.info.bundle_id,
            rules=self.rules,
        )
        study = self.studies.get(h.study_instance_uid)
        if study is not None and study.facts is not None and adds_nothing(study.facts, facts):
            self._instance(study, entry)
            return
        study = self._study(h, patient_pk, facts)
        if self._instance(study, entry):
            # only an inserted row is surely this study's: the facts the catalog now holds
            study.facts = facts if study.facts is None else study.facts.merged(facts)

    def _patient_pk(self, h: InstanceHeader) -> int:
        if h.patient_id not in self.patients:
            self.conn.execute(
                "INSERT INTO patients (facility_id, patient_id, patient_name, birth_date, sex) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (facility_id, patient_id) DO NOTHING",
                (self.info.facility_id, h.patient_id, h.patient_name, h.birth_date, h.sex),
            )
            self.patients[h.patient_id] = self.conn.execute(
                "SELECT patient_pk FROM patients WHERE facility_id = ? AND patient_id = ?",
                (self.info.facility_id, h.patient_id),
            ).fetchone()[0]
        return self.patients[h.patient_id]

    def _study(self, h: InstanceHeader, patient_pk: int, facts: StudyFacts) -> _Study:
        """The study's row, its expiry computed (and others' extended) with *facts*."""
        expiry = expiry_for(self.conn, facts, self.reception_date, rules=self.rules)
        self.conn.execute(
            "INSERT INTO studies (facility_id, patient_pk, study_instance_uid, accession, "
            "study_id, study_date, study_time, description, modalities, body_part, "
            "first_received, expiry, expiry_rule, expiry_anchor, study_date_flagged) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (facility_id, study_instance_uid) DO NOTHING",
            (
                self.info.facility_id,
                patient_pk,
                h.study_instance_uid,
                h.accession,
                h.study_id,
                h.study_date,
                h.study_time,
                h.study_description,
                h.modality,
                h.body_part,
                self.reception_date.isoformat(),
                expiry.expires.isoformat(),
                expiry.rule,
                expiry.anchor,
                int(expiry.study_date_flagged),
            ),
        )
        study_pk, modalities = self.conn.execute(
            "SELECT study_pk, modalities FROM studies WHERE facility_id = ? "
            "AND study_instance_uid = ?",
            (self.info.facility_id, h.study_instance_uid),
        ).fetchone()
        known = self.studies.get(h.study_instance_uid)
        study = _Study(study_pk, modalities, None if known is None else known.facts)
        self.studies[h.study_instance_uid] = study
        return study

    def _add_modality(self, study: _Study, modality: str) -> None:
        if modality and modality not in study.modalities.split("/"):
            study.modalities = "/".join(sorted({*study.modalities.split("/"), modality} - {""}))
            self.conn.execute(
                "UPDATE studies SET modalities = ? WHERE study_pk = ?",
                (study.modalities, study.pk),
            )

    def _series_pk(self, study_pk: int, h: InstanceHeader) -> int:
        key = (study_pk, h.series_instance_uid)
        if key not in self.series:
            self.conn.execute(
                "INSERT INTO series (study_pk, series_instance_uid, modality, description) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (study_pk, series_instance_uid) DO NOTHING",
                (study_pk, h.series_instance_uid, h.modality, h.series_description),
            )
            self.series[key] = self.conn.execute(
                "SELECT series_pk FROM series WHERE study_pk = ? AND series_instance_uid = ?",
                key,
            ).fetchone()[0]
        return self.series[key]

    def _instance(self, study: _Study, entry: IndexEntry) -> int:
        """Insert the instance row in its study and series (flagging a conflict); 1 if
        inserted, 0 if already there."""
        h = entry.header
        self._add_modality(study, h.modality)
        series_pk = self._series_pk(study.pk, h)
        conflict = (
            self.conn.execute(
                "SELECT 1 FROM instances WHERE sop_instance_uid = ? AND sha256 != ?",
                (h.sop_instance_uid, entry.sha256),
            ).fetchone()
            is not None
        )
        inserted = int(
            self.conn.execute(
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
                    self.info.bundle_id,
                    entry.seq,
                    entry.source_relpath,
                    self.reception_date.isoformat(),
                    int(conflict),
                ),
            ).rowcount
        )
        self.new_instances += inserted
        if conflict and inserted:
            self.conn.execute(
                "UPDATE instances SET conflict = 1 WHERE sop_instance_uid = ?",
                (h.sop_instance_uid,),
            )
        return inserted
