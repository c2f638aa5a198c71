"""Output requests: recorded, listed, fulfilled by an export, and the audit trail they leave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from center.cli.app import app
from center.core import audit
from center.core.archive import Archive
from center.core.export import destination
from center.core.requests import (
    EVENT_ORDER_RECORD,
    add_request,
    cancel_request,
    fulfil_request,
    list_requests,
)
from common.errors import QueryInvalid, RequestClosed, RequestUnknown
from tests.center.access.conftest import Imported, cli_env
from tests.conftest import NOW


def _patient(imported: Imported) -> str:
    return imported.manifest.a_studies[0].patient_id


def _add(archive: Archive, patient_id: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return add_request(
        archive.conn,
        "clinic-1",
        patient_id=patient_id,
        purpose="patient moves to another clinic",
        requested_by="Dr Oakhurst",
        operator="exp",
        now=NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def test_request_is_recorded_open_with_an_id(imported_archive: Archive, imported: Imported) -> None:
    """A new request is open, numbered, and keeps who asked and who recorded it."""
    req = _add(imported_archive, _patient(imported))
    assert (req.request_id, req.status, req.requested_by, req.recorded_by) == (
        "R00001",
        "open",
        "Dr Oakhurst",
        "exp",
    )
    assert _add(imported_archive, _patient(imported)).request_id == "R00002"


def test_request_reaches_only_its_facility(imported_archive: Archive, imported: Imported) -> None:
    """The request's export query is bound to the asking facility and patient."""
    query = _add(imported_archive, _patient(imported), modality="CT").query()
    assert (query.facility, query.patient_id, query.modality) == (
        "clinic-1",
        _patient(imported),
        "CT",
    )


def test_unknown_facility_is_refused(imported_archive: Archive) -> None:
    """A request from a facility the archive does not know is refused."""
    with pytest.raises(QueryInvalid, match="facility"):
        add_request(
            imported_archive.conn,
            "clinic-x",
            patient_id="P",
            purpose="p",
            requested_by="",
            operator="exp",
            now=NOW,
        )


def test_malformed_date_is_refused_when_recorded(imported_archive: Archive) -> None:
    """A bad --date is refused at `request add`, not later at fulfilment."""
    with pytest.raises(QueryInvalid):
        _add(imported_archive, "P", date="last week")


def test_fulfil_exports_the_patients_studies(
    imported_archive: Archive, imported: Imported, tmp_path: Path
) -> None:
    """Fulfilling exports exactly the patient's studies and closes the request."""
    patient = _patient(imported)
    req = _add(imported_archive, patient)
    done, report = fulfil_request(
        imported_archive,
        req.request_id,
        to=destination(to=tmp_path / "cd", encrypt_to=None, to_pacs=None),
        operator="boss",
        now=NOW,
    )
    expected = {
        s.study_instance_uid for s in imported.manifest.a_studies if s.patient_id == patient
    }
    assert {s.study_instance_uid for s in report.studies} == expected
    assert (done.status, done.closed_by, done.export_id) == ("fulfilled", "boss", report.export_id)


def test_audit_shows_who_asked_and_who_fulfilled(
    imported_archive: Archive, imported: Imported, tmp_path: Path
) -> None:
    """The export entry names the request; the request entries name asker, recorder, fulfiller."""
    req = _add(imported_archive, _patient(imported))
    _done, report = fulfil_request(
        imported_archive,
        req.request_id,
        to=destination(to=tmp_path / "cd", encrypt_to=None, to_pacs=None),
        operator="boss",
        now=NOW,
    )
    [export] = audit.entries(imported_archive.conn, action="export")
    assert export.details["request_id"] == req.request_id and export.operator == "boss"
    records = audit.entries(imported_archive.conn, action="request")
    assert [(e.event_code, e.operator, e.details["change"]) for e in records] == [
        (EVENT_ORDER_RECORD, "exp", "recorded"),
        (EVENT_ORDER_RECORD, "boss", "fulfilled"),
    ]
    assert records[1].details["requested_by"] == "Dr Oakhurst"
    assert records[1].details["export_id"] == report.export_id


def test_fulfilled_request_is_not_exported_twice(
    imported_archive: Archive, imported: Imported, tmp_path: Path
) -> None:
    """A second fulfilment is refused with request-closed and writes nothing."""
    req = _add(imported_archive, _patient(imported))
    fulfil_request(
        imported_archive,
        req.request_id,
        to=destination(to=tmp_path / "a", encrypt_to=None, to_pacs=None),
        operator="boss",
        now=NOW,
    )
    with pytest.raises(RequestClosed):
        fulfil_request(
            imported_archive,
            req.request_id,
            to=destination(to=tmp_path / "b", encrypt_to=None, to_pacs=None),
            operator="boss",
            now=NOW,
        )
    assert not (tmp_path / "b").exists()


def test_cancelled_request_cannot_be_fulfilled(
    imported_archive: Archive, imported: Imported, tmp_path: Path
) -> None:
    """A cancelled request keeps its reason and refuses fulfilment."""
    req = _add(imported_archive, _patient(imported))
    done = cancel_request(
        imported_archive.conn, req.request_id, reason="duplicate", operator="exp", now=NOW
    )
    assert (done.status, done.note) == ("cancelled", "duplicate")
    with pytest.raises(RequestClosed):
        fulfil_request(
            imported_archive,
            req.request_id,
            to=destination(to=tmp_path / "x", encrypt_to=None, to_pacs=None),
            operator="boss",
            now=NOW,
        )


def test_unknown_request_is_named(imported_archive: Archive, tmp_path: Path) -> None:
    """Fulfilling a request id that does not exist is request-unknown."""
    with pytest.raises(RequestUnknown):
        fulfil_request(
            imported_archive,
            "R99999",
            to=destination(to=tmp_path / "x", encrypt_to=None, to_pacs=None),
            operator="boss",
            now=NOW,
        )


def test_list_filters_by_status(imported_archive: Archive, imported: Imported) -> None:
    """Open requests are listed by default; cancelled ones only when asked for."""
    first = _add(imported_archive, _patient(imported))
    second = _add(imported_archive, _patient(imported))
    cancel_request(imported_archive.conn, first.request_id, reason="r", operator="exp", now=NOW)
    listed = list_requests(imported_archive.conn, operator="exp", now=NOW)
    assert [r.request_id for r in listed] == [second.request_id]
    cancelled = list_requests(imported_archive.conn, operator="exp", now=NOW, status="cancelled")
    assert [r.request_id for r in cancelled] == [first.request_id]


def test_request_workflow_through_the_cli(imported: Imported, tmp_path: Path) -> None:
    """An exporter records, lists and fulfils a request with the three commands."""
    env = cli_env(imported.root, "exp")
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "request",
            "add",
            "clinic-1",
            "--patient-id",
            _patient(imported),
            "--purpose",
            "transfer",
            "--requested-by",
            "Dr O",
            "--json",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    request_id = json.loads(added.stdout)["request_id"]
    listed = runner.invoke(app, ["request", "list", "--json"], env=env)
    assert [r["request_id"] for r in json.loads(listed.stdout)] == [request_id]
    fulfilled = runner.invoke(
        app, ["request", "fulfil", request_id, "--to", str(tmp_path / "cd"), "--json"], env=env
    )
    assert fulfilled.exit_code == 0, fulfilled.output
    assert json.loads(fulfilled.stdout)["request_id"] == request_id
    closed = runner.invoke(app, ["request", "list", "--status", "fulfilled", "--json"], env=env)
    assert json.loads(closed.stdout)[0]["export_id"] == json.loads(fulfilled.stdout)["export_id"]
