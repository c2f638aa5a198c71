"""The archive's rules and the import hook (contract C5): expiry as studies arrive."""

from __future__ import annotations

import sqlite3

import pytest

from center.core import audit
from center.core.retention import BUILTIN_ORIGIN, active_rules, install_rules
from common.errors import RulesInvalid
from common.retention_rules import preset_text
from tests.center.retention.conftest import BASIC_TEXT_SR, MG_IMAGE, Clinic
from tests.conftest import NOW


def _install(conn: sqlite3.Connection, preset: str) -> None:
    install_rules(conn, preset_text(preset), origin=f"preset:{preset}", operator="Admin", now=NOW)


def test_builtin_default_is_active_until_rules_are_installed(catalog: sqlite3.Connection) -> None:
    """A new archive uses the built-in default preset and says so."""
    rules = active_rules(catalog)
    assert rules.ruleset.name == "default" and rules.origin == BUILTIN_ORIGIN


def test_installing_rules_is_audited_with_both_versions(catalog: sqlite3.Connection) -> None:
    """Installing a rule set activates it and records old and new fingerprints in the audit log."""
    _install(catalog, "japan")
    rules = active_rules(catalog)
    assert rules.ruleset.name == "japan" and rules.installed_by == "Admin"
    entry = audit.entries(catalog, action="retention-rules")[-1]
    assert entry.details["previous"] == "default"
    assert entry.details["sha256"] == rules.ruleset.sha256


def test_invalid_rules_change_nothing(catalog: sqlite3.Connection) -> None:
    """A rules file with an error is refused and the active rules stay as they were."""
    _install(catalog, "japan")
    with pytest.raises(RulesInvalid):
        install_rules(catalog, "[ruleset]\n", origin="bad.toml", operator="Admin", now=NOW)
    assert active_rules(catalog).ruleset.name == "japan"
    assert len(audit.entries(catalog, action="retention-rules")) == 1


def test_new_study_gets_the_active_rules_expiry(clinic: Clinic) -> None:
    """A catalogued study's expiry comes from the active rule set."""
    _install(clinic.conn, "japan")
    clinic.study("1.1", study_date="20240229")
    assert clinic.expiry("1.1") == "2026-02-28"


def test_later_instance_with_a_longer_obligation_extends_the_study(clinic: Clinic) -> None:
    """A report arriving in the same study after its images lengthens the study's expiry."""
    _install(clinic.conn, "japan")
    clinic.study("1.1", study_date="20230701")
    assert clinic.expiry("1.1") == "2025-07-01"
    clinic.study("1.1", study_date="20230701", modality="SR", sop_class=BASIC_TEXT_SR, start=5)
    assert clinic.expiry("1.1") == "2028-07-01"


def test_later_visit_extends_an_earlier_study_and_is_audited(clinic: Clinic) -> None:
    """Under "8 years after the last visit", a later study moves the earlier one's expiry."""
    _install(clinic.conn, "england")
    clinic.study("1.1", study_date="20200310")
    assert clinic.expiry("1.1") == "2028-03-10"
    clinic.study("1.2", study_date="20230105")
    assert clinic.expiry("1.1") == "2031-01-05"
    extended = audit.entries(clinic.conn, action="retention-extend")
    assert [(e.details["before"], e.details["after"]) for e in extended] == [
        ("2028-03-10", "2031-01-05")
    ]
    assert extended[0].operator == "Importer" and "P1" not in str(extended[0].content())


def test_import_never_shortens_an_earlier_study(clinic: Clinic) -> None:
    """A later mammogram would allow 5 years instead of 10, but import leaves that to apply."""
    _install(clinic.conn, "us-mammography")
    clinic.study("1.1", study_date="20200310", modality="MG", sop_class=MG_IMAGE)
    clinic.study("1.2", study_date="20220401", modality="MG", sop_class=MG_IMAGE)
    assert clinic.expiry("1.1") == "2030-03-10"
    assert clinic.expiry("1.2") == "2032-04-01"


def test_studies_without_patient_id_are_not_pooled(clinic: Clinic) -> None:
    """Studies with a blank patient ID are not treated as visits of one patient."""
    _install(clinic.conn, "england")
    clinic.study("1.1", study_date="20200310", patient="")
    clinic.study("1.2", study_date="20230105", patient="")
    assert clinic.expiry("1.1") == "2028-03-10"


def test_recorded_period_in_the_objects_applies_when_longer(clinic: Clinic) -> None:
    """A period the facility recorded in the configured tag wins when it is longer."""
    text = preset_text("japan") + '\n[facility_period]\ntag = "StudyComments"\n'
    install_rules(clinic.conn, text, origin="japan+tag.toml", operator="Admin", now=NOW)
    clinic.study("1.1", study_date="20230701", extra={"StudyComments": "7Y"})
    clinic.study("1.2", study_date="20230701", extra={"StudyComments": "1Y"})
    assert clinic.expiry("1.1") == "2030-07-01"
    assert clinic.expiry("1.2") == "2025-07-01"
