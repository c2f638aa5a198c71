"""`expiry purge`: dry run by default; deletes only what is due; tombstones; shared objects."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest

from center.core import audit
from center.core import purge as purge_module
from center.core.expiry import DUE, HELD, NO_CONTRACT, WAITING, study_states
from center.core.facilities import set_contract
from center.core.holds import add_hold, list_holds, release_hold
from center.core.lock import maintenance_lock
from center.core.purge import PurgeReport, purge, tombstones
from center.core.retention import install_rules
from center.core.studyref import find_study
from common.errors import ArchiveBusy, HoldNotFound, PatientNotFound
from common.retention_rules import preset_text
from tests.center.retention.conftest import Clinic
from tests.conftest import NOW


def _contract(
    conn: sqlite3.Connection, on_expiry: str = "delete", grace: int = 0, facility: str = "clinic-1"
) -> None:
    set_contract(conn, facility, on_expiry=on_expiry, grace_days=grace, operator="Admin", now=NOW)


def _purge(clinic: Clinic, execute: bool = True, **kwargs: object) -> PurgeReport:
    return purge(
        clinic.conn,
        clinic.store,
        now=NOW,
        operator="Purger",
        execute=execute,
        lock_root=clinic.tmp,
        **kwargs,
    )  # type: ignore[arg-type]


def _uids(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT study_instance_uid FROM studies")}


@pytest.fixture
def expired(clinic: Clinic) -> Clinic:
    """Study 1.1 expired on 2025-03-10; study 1.2 (same patient) is kept until 2031."""
    clinic.study("1.1", study_date="20150310", accession="OLD")
    clinic.study("1.2", study_date="20210505", accession="NEW")
    return clinic


def test_dry_run_lists_but_deletes_nothing(expired: Clinic) -> None:
    """Without execute, purge names the due study and leaves catalog and store alone."""
    _contract(expired.conn)
    report = _purge(expired, execute=False)
    assert [s.study.accession for s in report.due] == ["OLD"] and report.deleted == []
    assert _uids(expired.conn) == {"1.1", "1.2"}
    assert sum(1 for _ in expired.store) == 4


def test_purge_deletes_the_due_study_with_tombstone_and_audit(expired: Clinic) -> None:
    """The expired study goes: rows, objects; a tombstone and a 110105 entry record it."""
    _contract(expired.conn)
    report = _purge(expired)
    assert [d.accession for d in report.deleted] == ["OLD"]
    assert _uids(expired.conn) == {"1.2"}
    assert report.objects_removed == 2 and sum(1 for _ in expired.store) == 2
    [stone] = tombstones(expired.conn)
    assert (stone.accession, stone.expiry, stone.deleted_by) == ("OLD", "2025-03-10", "Purger")
    assert stone.rule.startswith("default/ten-years") and stone.instances == 2
    entry = audit.entries(expired.conn, action="purge")[0]
    assert entry.event_code == audit.EVENT_STUDY_DELETED and entry.seq == stone.audit_seq
    assert "OLD" not in str(entry.content()) and "1.1" not in str(entry.content())


def test_purge_is_idempotent(expired: Clinic) -> None:
    """A second purge finds nothing more to delete."""
    _contract(expired.conn)
    _purge(expired)
    again = _purge(expired)
    assert again.deleted == [] and again.objects_removed == 0
    assert len(tombstones(expired.conn)) == 1


def test_nothing_is_deleted_without_a_contract(expired: Clinic) -> None:
    """A facility without a contract keeps everything, and the report says why."""
    report = _purge(expired)
    assert report.deleted == [] and report.not_due == {NO_CONTRACT: 1}


def test_delete_contract_waits_for_its_grace_days(expired: Clinic) -> None:
    """With grace days, the study stays until the day after expiry plus the grace days."""
    _contract(expired.conn, grace=(NOW.date() - date(2025, 3, 11)).days + 1)
    assert _purge(expired).not_due == {WAITING: 1}
    later = purge(
        expired.conn,
        expired.store,
        now=NOW + timedelta(days=1),
        operator="P",
        execute=True,
        lock_root=expired.tmp,
    )
    assert [d.accession for d in later.deleted] == ["OLD"]


def test_study_hold_prevents_deletion_until_released(expired: Clinic) -> None:
    """A held study is never purged; once the hold is released it is."""
    _contract(expired.conn)
    hold = add_hold(
        expired.conn,
        study=find_study(expired.conn, "OLD"),
        reason="court case 12",
        operator="Legal",
        now=NOW,
    )
    assert _purge(expired).not_due == {HELD: 1} and _uids(expired.conn) == {"1.1", "1.2"}
    release_hold(expired.conn, hold.hold_id, reason="case closed", operator="Legal", now=NOW)
    assert [d.accession for d in _purge(expired).deleted] == ["OLD"]
    assert [h.release_reason for h in list_holds(expired.conn, include_released=True)] == [
        "case closed"
    ]


def test_patient_hold_covers_every_study_of_the_patient(expired: Clinic) -> None:
    """A hold on a patient protects all their studies at that facility."""
    _contract(expired.conn)
    add_hold(
        expired.conn,
        facility_id="clinic-1",
        patient_id="P1",
        reason="litigation",
        operator="Legal",
        now=NOW,
    )
    assert _purge(expired).deleted == []
    [state] = [s for s in study_states(expired.conn, None, now=NOW) if s.study.accession == "OLD"]
    assert state.decision.status == HELD and state.holds


def test_hold_on_unknown_patient_or_released_hold_is_refused(expired: Clinic) -> None:
    """Holding an unknown patient, or releasing a hold twice, is a clear error."""
    with pytest.raises(PatientNotFound):
        add_hold(
            expired.conn,
            facility_id="clinic-1",
            patient_id="NOBODY",
            reason="x",
            operator="L",
            now=NOW,
        )
    hold = add_hold(
        expired.conn, facility_id="clinic-1", patient_id="P1", reason="x", operator="L", now=NOW
    )
    release_hold(expired.conn, hold.hold_id, reason="done", operator="L", now=NOW)
    with pytest.raises(HoldNotFound):
        release_hold(expired.conn, hold.hold_id, reason="again", operator="L", now=NOW)


def test_object_still_referenced_is_kept(clinic: Clinic) -> None:
    """An object another remaining instance references stays in the store."""
    clinic.study("1.1", study_date="20150310", instances=1)
    sha = str(clinic.conn.execute("SELECT sha256 FROM instances").fetchone()[0])
    clinic.study("2.1", study_date="20210505", instances=1, shared_with=sha)
    _contract(clinic.conn)
    report = _purge(clinic)
    assert len(report.deleted) == 1 and report.objects_removed == 0
    assert clinic.store.exists(sha)


def test_interrupted_purge_removes_leftover_objects_next_time(
    expired: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A purge stopped after the catalog commit leaves objects that the next purge removes."""
    _contract(expired.conn)

    def crash(*args: object) -> tuple[int, int]:
        raise KeyboardInterrupt

    monkeypatch.setattr(purge_module, "_remove_unreferenced", crash)
    with pytest.raises(KeyboardInterrupt):
        _purge(expired)
    assert _uids(expired.conn) == {"1.2"} and sum(1 for _ in expired.store) == 4
    monkeypatch.undo()
    assert _purge(expired).objects_removed == 2 and sum(1 for _ in expired.store) == 2


def test_stale_stored_expiry_does_not_expose_a_study(clinic: Clinic) -> None:
    """A stored expiry earlier than the current rules give does not make the study due."""
    clinic.study("1.1", study_date="20200310")
    clinic.set_expiry("1.1", "2020-01-01")
    _contract(clinic.conn)
    assert _purge(clinic).deleted == [] and _uids(clinic.conn) == {"1.1"}


def test_longer_rules_protect_before_they_are_applied(expired: Clinic) -> None:
    """Rules made longer but not yet applied already keep an otherwise expired study."""
    twenty = preset_text("default").replace("period = { years = 10 }", "period = { years = 20 }")
    install_rules(expired.conn, twenty, origin="twenty.toml", operator="Admin", now=NOW)
    _contract(expired.conn)
    assert _purge(expired).deleted == [] and "1.1" in _uids(expired.conn)
    states = {s.study.accession: s for s in study_states(expired.conn, None, now=NOW)}
    assert states["OLD"].stale and states["OLD"].effective.isoformat() == "2035-03-10"


def test_due_status_matches_what_purge_deletes(expired: Clinic) -> None:
    """Every study listed as due is deleted, and nothing else."""
    _contract(expired.conn)
    due = {
        s.study.facts.study_instance_uid
        for s in study_states(expired.conn, None, now=NOW)
        if s.decision.status == DUE
    }
    deleted = {d.study_instance_uid for d in _purge(expired).deleted}
    assert due == deleted == {"1.1"}


def test_purge_waits_for_no_import(expired: Clinic) -> None:
    """While an import holds the archive's maintenance lock, purge --yes is refused; a dry run
    still works."""
    _contract(expired.conn)
    with maintenance_lock(expired.tmp, "import"):
        with pytest.raises(ArchiveBusy):
            _purge(expired)
        assert [s.study.accession for s in _purge(expired, execute=False).due] == ["OLD"]
    assert _uids(expired.conn) == {"1.1", "1.2"}
