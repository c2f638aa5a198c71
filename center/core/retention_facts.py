"""What the retention rules see of catalogued studies (issue 5).

:class:`CatalogStudy` is a study as the catalog holds it, with the facts its rules look at:
modalities and SOP classes of all its instances, body parts, the period the facility recorded
(read from the stored objects, kept in ``retention_facts``), the patient's birth date and the
reception date; :func:`compute` evaluates a rule set over studies with their patients' other
studies as context.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from center.core.studyref import study_label
from common.dicomhdr import HeaderError, TagRef, read_header_values
from common.retention import Expiry, RuleSet, StudyFacts, evaluate, longest_recorded
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.store import ObjectStore


def transaction_of(conn: sqlite3.Connection) -> AbstractContextManager[sqlite3.Connection]:
    """The caller's transaction if one is open, else a new BEGIN IMMEDIATE one."""
    return contextlib.nullcontext(conn) if conn.in_transaction else transaction(conn)


@dataclass(frozen=True)
class CatalogStudy:
    """A catalogued study with what the rules look at, and its stored expiry."""

    study_pk: int
    patient_pk: int
    accession: str
    facts: StudyFacts
    expiry: date
    expiry_rule: str
    expiry_anchor: str
    flagged: bool
    recorded_tag: str

    @property
    def label(self) -> str:
        return study_label(self.facts.facility_id, self.facts.study_instance_uid)


_STUDY_SQL = """
SELECT st.study_pk, st.patient_pk, st.accession, st.facility_id, st.study_instance_uid,
       p.patient_id, st.study_date, p.birth_date, st.first_received, st.modalities,
       st.body_part, st.description, st.expiry, st.expiry_rule, st.expiry_anchor,
       st.study_date_flagged, rf.body_parts, rf.recorded_tag, rf.recorded_period
FROM studies st JOIN patients p ON p.patient_pk = st.patient_pk
LEFT JOIN retention_facts rf
       ON rf.facility_id = st.facility_id AND rf.study_instance_uid = st.study_instance_uid
"""


def split_modalities(text: str) -> frozenset[str]:
    return frozenset(p for p in text.split("/") if p)


def catalog_studies(
    conn: sqlite3.Connection,
    *,
    facility_id: str | None = None,
    patient_pks: Iterable[int] | None = None,
    study_pks: Iterable[int] | None = None,
    expiring_by: date | None = None,
) -> list[CatalogStudy]:
    """Catalogued studies with their rule facts, optionally narrowed (all filters combine)."""
    clauses, params = [], []
    if facility_id is not None:
        clauses.append("st.facility_id = ?")
        params.append(facility_id)
    if patient_pks is not None:
        clauses.append("st.patient_pk IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(set(patient_pks))))
    if study_pks is not None:
        clauses.append("st.study_pk IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(set(study_pks))))
    if expiring_by is not None:
        clauses.append("st.expiry <= ?")
        params.append(expiring_by.isoformat())
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(_STUDY_SQL + where + " ORDER BY st.study_pk", params).fetchall()
    if not rows:
        return []
    pks = json.dumps([int(r[0]) for r in rows])
    modalities: dict[int, set[str]] = defaultdict(set)
    sop_classes: dict[int, set[str]] = defaultdict(set)
    for pk, modality, sop_class in conn.execute(
        "SELECT DISTINCT se.study_pk, se.modality, i.sop_class_uid FROM series se "
        "JOIN instances i ON i.series_pk = se.series_pk "
        "WHERE se.study_pk IN (SELECT value FROM json_each(?))",
        (pks,),
    ):
        if modality:
            modalities[int(pk)].add(str(modality))
        sop_classes[int(pk)].add(str(sop_class))
    found = []
    for r in rows:
        pk = int(r[0])
        body_parts = {str(r[10]).upper()} if r[10] else set()
        body_parts |= set(json.loads(r[16])) if r[16] else set()
        facts = StudyFacts(
            facility_id=str(r[3]),
            study_instance_uid=str(r[4]),
            patient_id=str(r[5]),
            study_date=str(r[6]),
            birth_date=str(r[7]),
            received=date.fromisoformat(str(r[8])),
            modalities=split_modalities(str(r[9])) | modalities[pk],
            sop_classes=frozenset(sop_classes[pk]),
            body_parts=frozenset(body_parts),
            description=str(r[11]),
            recorded_period=str(r[18] or ""),
        )
        found.append(
            CatalogStudy(
                pk,
                int(r[1]),
                str(r[2]),
                facts,
                date.fromisoformat(str(r[12])),
                str(r[13]),
                str(r[14]),
                bool(r[15]),
                str(r[17] or ""),
            )
        )
    return found


def with_context(conn: sqlite3.Connection, studies: Sequence[CatalogStudy]) -> list[CatalogStudy]:
    """Every study of the patients of *studies* (the context their rules look at)."""
    return catalog_studies(conn, patient_pks={s.patient_pk for s in studies})


def compute(
    ruleset: RuleSet, studies: Sequence[CatalogStudy], context: Sequence[CatalogStudy]
) -> dict[int, Expiry]:
    """The expiry of each of *studies* under *ruleset*, by study_pk."""
    by_patient: dict[int, list[StudyFacts]] = defaultdict(list)
    for item in context:
        by_patient[item.patient_pk].append(item.facts)
    return {
        s.study_pk: evaluate(ruleset, s.facts, patient_others(s.facts, by_patient[s.patient_pk]))
        for s in studies
    }


def patient_others(facts: StudyFacts, patient_studies: Sequence[StudyFacts]) -> list[StudyFacts]:
    """The patient's other studies; none when the patient ID is blank (identity unknown)."""
    if not facts.patient_id.strip():
        return []
    return [f for f in patient_studies if f.study_instance_uid != facts.study_instance_uid]


# -- the facility-recorded period -------------------------------------------------------------


def recorded_value(path: Path, tag: str) -> str:
    """The value of the configured tag in one stored object ('' when absent or unreadable)."""
    ref = TagRef.parse(tag)
    try:
        return read_header_values(path, [ref])[1].get(ref.key, "")
    except HeaderError:
        return ""


def refresh_recorded(
    conn: sqlite3.Connection,
    store: ObjectStore,
    ruleset: RuleSet,
    studies: Sequence[CatalogStudy],
) -> list[CatalogStudy]:
    """*studies* with the recorded period read from their objects where the tag changed.

    Reads every instance of a study whose facts were recorded for another tag (or never), and
    keeps the longest value found; the result is stored in ``retention_facts``.
    """
    if ruleset.recorded_period is None:
        return list(studies)
    tag = ruleset.recorded_period.tag
    refreshed = []
    for study in studies:
        if study.recorded_tag == tag:
            refreshed.append(study)
            continue
        value = ""
        for (sha,) in conn.execute(
            "SELECT i.sha256 FROM instances i JOIN series se ON se.series_pk = i.series_pk "
            "WHERE se.study_pk = ?",
            (study.study_pk,),
        ).fetchall():
            value = longest_recorded(value, recorded_value(store.path(str(sha)), tag))
        with transaction_of(conn):
            store_facts(conn, study.facts, tag, value)
        refreshed.append(
            replace(study, facts=replace(study.facts, recorded_period=value), recorded_tag=tag)
        )
    return refreshed


def store_facts(conn: sqlite3.Connection, facts: StudyFacts, tag: str, recorded: str) -> None:
    conn.execute(
        "INSERT INTO retention_facts (facility_id, study_instance_uid, body_parts, "
        "recorded_tag, recorded_period) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (facility_id, study_instance_uid) DO UPDATE SET "
        "body_parts = excluded.body_parts, recorded_tag = excluded.recorded_tag, "
        "recorded_period = excluded.recorded_period",
        (
            facts.facility_id,
            facts.study_instance_uid,
            json.dumps(sorted(facts.body_parts)),
            tag,
            recorded,
        ),
    )
