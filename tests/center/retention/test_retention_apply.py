"""`retention apply`: recompute after a rule change, report before/after, honour promises."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest

from center.core import audit
from center.core.retention import install_rules
from center.core.retention_apply import KEPT_AT_PROMISE, WAIVED, apply_rules, explain
from center.core.store import ObjectStore
from center.core.studyref import find_study
from common.errors import ConfigError, StudyAmbiguous, StudyNotFound
from common.retention_rules import preset_text
from tests.center.retention.conftest import MG_IMAGE, Clinic
from tests.conftest import NOW


def _install(conn: sqlite3.Connection, preset: str) -> None:
    install_rules(conn, preset_text(preset), origin=f"preset:{preset}", operator="Admin", now=NOW)


def _apply(clinic: Clinic, **kwargs: object):  # type: ignore[no-untyped-def]
    return apply_rules(
        clinic.conn, clinic.store, now=NOW, operator="Admin", lock_root=clinic.tmp, **kwargs
    )  # type: ignore[arg-type]


def test_apply_reports_before_and_after_and_audits(clinic: Clinic) -> None:
    """After a rule change, apply rewrites each expiry and lists every change in one entry."""
    clinic.study("1.1", study_date="20200310")
    clinic.study("1.2", study_date="20210505", modality="MR")
    _install(clinic.conn, "japan")
    report = _apply(clinic)
    changes = {c.study_instance_uid: (c.before, c.after) for c in report.changes}
    assert changes == {
        "1.1": (date(2030, 3, 10), date(2022, 3, 10)),
        "1.2": (date(2031, 5, 5), date(2026, 5, 5)),
    }
    assert clinic.expiry("1.1") == "2022-03-10"
    entry = audit.entries(clinic.conn, action="retention-apply")[-1]
    assert entry.seq == report.audit_seq and len(entry.details["changes"]) == 2
    assert "1.1" not in str(entry.details)  # studies are named by data-free labels


def test_apply_twice_changes_nothing_the_second_time(clinic: Clinic) -> None:
    """Apply is idempotent: a second run finds nothing to change and writes no audit entry."""
    clinic.study("1.1", study_date="20200310")
    _install(clinic.conn, "england")
    assert _apply(clinic).changes
    again = _apply(clinic)
    assert again.changes == [] and again.audit_seq is None
    assert len(audit.entries(clinic.conn, action="retention-apply")) == 1


def test_dry_run_changes_nothing(clinic: Clinic) -> None:
    """A dry run reports the changes without writing them."""
    clinic.study("1.1", study_date="20200310")
    _install(clinic.conn, "japan")
    report = _apply(clinic, dry_run=True)
    assert report.changes and clinic.expiry("1.1") == "2030-03-10"
    assert audit.entries(clinic.conn, action="retention-apply") == []


def test_apply_never_goes_below_a_promise(clinic: Clinic) -> None:
    """An expiry promised on a storage receipt stays, and the report says why."""
    clinic.study("1.1", study_date="20200310")
    clinic.promise("1.1", "2030-03-10")
    _install(clinic.conn, "japan")
    report = _apply(clinic)
    assert clinic.expiry("1.1") == "2030-03-10"
    assert report.kept_by_promise == 1 and report.changes[0].note == KEPT_AT_PROMISE
    assert _apply(clinic).changes == []


def test_override_reason_allows_going_below_a_promise_and_is_audited(clinic: Clinic) -> None:
    """With an explicit reason the promise is waived, recorded and audited; later runs agree."""
    clinic.study("1.1", study_date="20200310")
    clinic.promise("1.1", "2030-03-10")
    _install(clinic.conn, "japan")
    report = _apply(clinic, override_reason="clinic closed, contract ended 2026-10")
    assert clinic.expiry("1.1") == "2022-03-10" and report.changes[0].note == WAIVED
    entry = audit.entries(clinic.conn, action="retention-apply")[-1]
    assert entry.details["override_reason"] == "clinic closed, contract ended 2026-10"
    assert _apply(clinic).changes == []


def test_empty_override_reason_is_refused(clinic: Clinic) -> None:
    """An override without a reason is refused before anything changes."""
    with pytest.raises(ConfigError):
        _apply(clinic, override_reason="  ")


def test_later_mammogram_shortens_the_earlier_one_on_apply(clinic: Clinic) -> None:
    """Apply recomputes "10 years if no later mammogram" once a later one arrived."""
    _install(clinic.conn, "us-mammography")
    clinic.study("1.1", study_date="20200310", modality="MG", sop_class=MG_IMAGE)
    clinic.study("1.2", study_date="20220401", modality="MG", sop_class=MG_IMAGE)
    report = _apply(clinic)
    assert [(c.study_instance_uid, c.after) for c in report.changes] == [("1.1", date(2025, 3, 10))]


def test_apply_can_be_scoped_to_one_facility(clinic: Clinic) -> None:
    """With a facility, only that facility's studies are recomputed."""
    clinic.study("1.1", study_date="20200310")
    clinic.study("2.1", study_date="20200310", facility="clinic-2")
    _install(clinic.conn, "japan")
    report = _apply(clinic, facility_id="clinic-2")
    assert [c.study_instance_uid for c in report.changes] == ["2.1"]
    assert clinic.expiry("1.1") == "2030-03-10"


def test_explain_names_every_rule_and_the_winner(clinic: Clinic, store: ObjectStore) -> None:
    """Explain lists each rule with whether it matched, why, and which one decided."""
    _install(clinic.conn, "england")
    clinic.study("1.1", study_date="20200601", birth="20030228", accession="ACC1")
    found = explain(clinic.conn, store, find_study(clinic.conn, "ACC1"), now=NOW)
    outcomes = {o.rule_id: o for o in found.computed.outcomes}
    assert outcomes["child-17-until-26"].winner
    assert outcomes["child-17-until-26"].reasons == ("age at the last visit 17",)
    assert not outcomes["screening-mammography"].matched
    assert found.computed.expires == date(2029, 2, 28) and found.state.holds == []


def test_study_lookup_by_accession_refuses_ambiguity(clinic: Clinic) -> None:
    """An accession used by two facilities needs the facility or the UID."""
    clinic.study("1.1", study_date="20200310", accession="SAME")
    clinic.study("2.1", study_date="20200310", accession="SAME", facility="clinic-2")
    with pytest.raises(StudyAmbiguous):
        find_study(clinic.conn, "SAME")
    assert find_study(clinic.conn, "SAME", "clinic-2").study_instance_uid == "2.1"
    assert find_study(clinic.conn, "1.1").accession == "SAME"
    with pytest.raises(StudyNotFound):
        find_study(clinic.conn, "NOPE")
