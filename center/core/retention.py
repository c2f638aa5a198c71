"""The archive's retention rules and the expiry of catalogued studies (DESIGN.md s8, contract C5).

The active rule set is stored in the catalog (``retention_rulesets``: its TOML source, who
installed it and when); an archive that never installed one uses the built-in ``default``
preset. Installing rules is audited and changes no expiry by itself: ``center retention apply``
(:mod:`center.core.retention_apply`) recomputes them, and the expiry commands always use the
later of the stored and the freshly computed expiry, so a rule change cannot make anything
expire early before it is applied.

:func:`expiry_for` is the hook the importer calls for every instance it catalogues that adds a
fact to its study (:func:`adds_nothing`: one that adds none cannot change any expiry). It sees
the study as the catalog holds it plus the new instance, and the patient's other studies at the
facility. Because one study can lengthen another's obligation (a later visit moves "8 years
after the last visit"; a later mammogram changes "10 years if none later"), it also extends
(never shortens) the stored expiry of the patient's studies already in the catalog, audited as
part of the import. Shortening is only ever done by ``apply``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

from center.core import audit
from center.core.retention_facts import (
    CatalogStudy,
    catalog_studies,
    patient_others,
    recorded_value,
    split_modalities,
    store_facts,
    transaction_of,
)
from common.retention import Expiry, RuleSet, StudyFacts, evaluate, longest_recorded
from common.retention_rules import DEFAULT_PRESET, load_rules, parse_cached, preset_text

if TYPE_CHECKING:
    from center.core.store import ObjectStore
    from common.bundle.reader import IndexEntry

BUILTIN_ORIGIN = f"preset:{DEFAULT_PRESET} (built in; never installed)"
EVENT_TYPE_SOFTWARE_CONFIGURATION = "110131"  # PS3.15 / CID 401


@dataclass(frozen=True)
class ActiveRules:
    ruleset: RuleSet
    origin: str
    source: str
    installed_at: str | None = None
    installed_by: str | None = None


def active_rules(conn: sqlite3.Connection) -> ActiveRules:
    """The archive's rule set (the built-in default until one is installed)."""
    row = conn.execute(
        "SELECT origin, source, installed_at, installed_by FROM retention_rulesets WHERE active = 1"
    ).fetchone()
    if row is None:
        text = preset_text(DEFAULT_PRESET)
        return ActiveRules(parse_cached(text, f"preset {DEFAULT_PRESET}"), BUILTIN_ORIGIN, text)
    origin, source = str(row[0]), str(row[1])
    return ActiveRules(parse_cached(source, origin), origin, source, str(row[2]), str(row[3]))


def install_rules(
    conn: sqlite3.Connection, text: str, *, origin: str, operator: str, now: datetime
) -> tuple[ActiveRules, ActiveRules]:
    """Validate *text* and make it the active rule set; (previous, new). Audited.

    Raises RulesInvalid (listing every problem) before anything changes.
    """
    ruleset = load_rules(text, source=origin)
    with transaction_of(conn):
        previous = active_rules(conn)
        conn.execute("UPDATE retention_rulesets SET active = 0 WHERE active = 1")
        conn.execute(
            "INSERT INTO retention_rulesets (name, origin, sha256, source, installed_at, "
            "installed_by, active) VALUES (?, ?, ?, ?, ?, ?, 1)",
            (
                ruleset.name,
                origin,
                ruleset.sha256,
                text,
                now.isoformat(timespec="seconds"),
                operator,
            ),
        )
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="retention-rules",
            event_code=audit.EVENT_SECURITY_ALERT,
            target=f"ruleset:{ruleset.name}",
            details={
                "event_type": EVENT_TYPE_SOFTWARE_CONFIGURATION,
                "origin": origin,
                "sha256": ruleset.sha256,
                "previous": previous.ruleset.name,
                "previous_sha256": previous.ruleset.sha256,
                "rules": [r.id for r in ruleset.rules],
            },
        )
    return previous, active_rules(conn)


# -- the import hook (C5) ---------------------------------------------------------------------


def import_facts(
    conn: sqlite3.Connection,
    store: ObjectStore,
    entry: IndexEntry,
    *,
    facility_id: str,
    bundle_id: str,
    rules: RuleSet | None = None,
) -> StudyFacts:
    """What one instance being imported tells the rules (reads its stored object for the
    recorded period only when the rule set configures a tag). *rules* are the active rules
    when the caller holds them already (one bundle's import reads them once)."""
    h = entry.header
    if rules is None:
        rules = active_rules(conn).ruleset
    recorded_period = rules.recorded_period
    recorded = ""
    if recorded_period is not None:
        recorded = recorded_value(store.path(entry.sha256), recorded_period.tag)
    return StudyFacts(
        facility_id=facility_id,
        study_instance_uid=h.study_instance_uid,
        patient_id=h.patient_id,
        study_date=h.study_date,
        birth_date=h.birth_date,
        modalities=frozenset({h.modality} if h.modality else ()),
        sop_classes=frozenset({h.sop_class_uid}),
        body_parts=frozenset({h.body_part.upper()} if h.body_part else ()),
        description=h.study_description,
        recorded_period=recorded,
        bundle_id=bundle_id,
    )


def expiry_for(
    conn: sqlite3.Connection,
    facts: StudyFacts,
    reception_date: date,
    *,
    rules: RuleSet | None = None,
) -> Expiry:
    """The expiry of the study *facts* describes, as the catalog holds it plus these facts.

    Called by the importer for every instance that adds a fact to its study, inside its
    transaction. When *facts* come from
    an import (``bundle_id`` set), the new facts are recorded, and the stored expiry of this
    study and of the patient's other studies at the facility is extended where the new facts
    lengthen it (never shortened); extensions of studies catalogued by earlier imports are
    audited (event 110103) in the import's name. *rules* are the active rules when the caller
    holds them already.
    """
    if rules is None:
        rules = active_rules(conn).ruleset
    tag = rules.recorded_period.tag if rules.recorded_period else ""
    known = _unchanged(conn, facts)
    if known is not None:
        return known
    patient = conn.execute(
        "SELECT patient_pk FROM patients WHERE facility_id = ? AND patient_id = ?",
        (facts.facility_id, facts.patient_id),
    ).fetchone()
    context = catalog_studies(conn, patient_pks=[int(patient[0])]) if patient else []
    existing = next(
        (c for c in context if c.facts.study_instance_uid == facts.study_instance_uid), None
    )
    if existing is None:
        merged = replace(facts, received=facts.received or reception_date)
    else:
        merged = replace(existing.facts.merged(facts), bundle_id=facts.bundle_id)
    others = patient_others(merged, [c.facts for c in context])
    expiry = evaluate(rules, merged, others)
    if not facts.bundle_id or not conn.in_transaction:
        return expiry
    store_facts(conn, merged, tag, merged.recorded_period)
    updates = [] if existing is None else [(existing, expiry)]
    if facts.patient_id.strip():
        for other in context:
            if other is existing:
                continue
            neighbours = [merged, *(c.facts for c in context if c not in (other, existing))]
            updates.append((other, evaluate(rules, other.facts, neighbours)))
    for study, new in updates:
        if new.expires > study.expiry:
            _extend(conn, study, new, facts.bundle_id, reception_date)
    if existing is not None and existing.expiry > expiry.expires:
        return Expiry(
            existing.expiry, existing.expiry_anchor, existing.expiry_rule, existing.flagged
        )
    return expiry


def adds_nothing(known: StudyFacts, facts: StudyFacts) -> bool:
    """Whether *facts* of one more instance leave the study's facts *known* as they are (as
    ``known.merged(facts) == known``, without building the merge): no new modality, SOP class
    or body part, no longer recorded period.

    When *known* are the facts of instances this import transaction already catalogued
    through :func:`expiry_for`, the catalog holds at least them, so :func:`expiry_for` would
    find *facts* unchanged and return the stored expiry without writing anything.
    """
    return (
        facts.modalities <= known.modalities
        and facts.sop_classes <= known.sop_classes
        and facts.body_parts <= known.body_parts
        and longest_recorded(known.recorded_period, facts.recorded_period) == known.recorded_period
    )


def _unchanged(conn: sqlite3.Connection, facts: StudyFacts) -> Expiry | None:
    """The stored expiry when *facts* add nothing to a catalogued study (the common case of
    the second and later instances of a study), else None."""
    row = conn.execute(
        "SELECT st.study_pk, st.modalities, st.body_part, st.expiry, st.expiry_anchor, "
        "st.expiry_rule, st.study_date_flagged, rf.body_parts, rf.recorded_period "
        "FROM studies st LEFT JOIN retention_facts rf ON rf.facility_id = st.facility_id "
        "AND rf.study_instance_uid = st.study_instance_uid "
        "WHERE st.facility_id = ? AND st.study_instance_uid = ?",
        (facts.facility_id, facts.study_instance_uid),
    ).fetchone()
    if row is None:
        return None
    body_parts = {str(row[2]).upper()} | set(json.loads(row[7]) if row[7] else [])
    recorded = str(row[8] or "")
    if (
        not facts.modalities <= split_modalities(str(row[1]))
        or not facts.body_parts <= body_parts
        or longest_recorded(recorded, facts.recorded_period) != recorded
    ):
        return None
    for sop_class in facts.sop_classes:
        if not conn.execute(
            "SELECT 1 FROM series se JOIN instances i ON i.series_pk = se.series_pk "
            "WHERE se.study_pk = ? AND i.sop_class_uid = ? LIMIT 1",
            (row[0], sop_class),
        ).fetchone():
            return None
    return Expiry(date.fromisoformat(str(row[3])), str(row[4]), str(row[5]), bool(row[6]))


def _extend(
    conn: sqlite3.Connection, study: CatalogStudy, new: Expiry, bundle_id: str, day: date
) -> None:
    conn.execute(
        "UPDATE studies SET expiry = ?, expiry_rule = ?, expiry_anchor = ?, "
        "study_date_flagged = ? WHERE study_pk = ?",
        (
            new.expires.isoformat(),
            new.rule,
            new.anchor,
            int(new.study_date_flagged),
            study.study_pk,
        ),
    )
    earlier = conn.execute(
        "SELECT 1 FROM instances i JOIN series se ON se.series_pk = i.series_pk "
        "WHERE se.study_pk = ? AND i.bundle_id != ? LIMIT 1",
        (study.study_pk, bundle_id),
    ).fetchone()
    if earlier is None:
        return  # the study arrives with this bundle: its expiry is part of the import
    row = conn.execute(
        "SELECT imported_at, imported_by FROM bundles WHERE bundle_id = ?", (bundle_id,)
    ).fetchone()
    at = datetime.fromisoformat(str(row[0])) if row else datetime.combine(day, time(), UTC)
    audit.record(
        conn,
        at=at,
        operator=str(row[1]) if row else "import",
        action="retention-extend",
        event_code=audit.EVENT_INSTANCES_ACCESSED,
        target=study.label,
        details={
            "facility_id": study.facts.facility_id,
            "bundle_id": bundle_id,
            "before": study.expiry.isoformat(),
            "after": new.expires.isoformat(),
            "rule": new.rule,
        },
    )
