"""Output requests (issue 6): a clinic asks for images back; the center records, then fulfils.

A request names the facility that asks, the patient (and optionally narrower criteria), the
purpose and who at the clinic asked. It only ever reaches the asking facility's own studies:
the facility is part of its criteria. Fulfilling runs the export (:mod:`center.core.export`)
with the request's criteria and purpose and ties the two together, so the audit log shows who
asked, who recorded the request, who fulfilled it, when, and what was sent. Request records
use PS3.15 event 110109 (Order Record); the export itself is a 110106 entry naming the request.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from center.core import audit
from center.core.export import Destination, ExportReport, export_studies
from center.core.search import StudyQuery, parse_date_range
from center.core.studyref import patient_label
from common.errors import QueryInvalid, RequestClosed, RequestUnknown
from common.progress import Progress
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.archive import Archive

EVENT_ORDER_RECORD = "110109"
STATUSES = ("open", "fulfilled", "cancelled")


@dataclass(frozen=True)
class OutputRequest:
    request_id: str
    facility_id: str
    patient_id: str
    criteria: dict[str, Any]
    purpose: str
    requested_by: str
    recorded_by: str
    recorded_at: str
    status: str
    closed_by: str | None
    closed_at: str | None
    export_id: str | None
    destination: str | None
    note: str

    def query(self) -> StudyQuery:
        """The export query of this request (always limited to its facility and patient)."""
        c = self.criteria
        first, last = parse_date_range(c["date"]) if c.get("date") else (None, None)
        return StudyQuery(
            facility=self.facility_id,
            patient_id=self.patient_id,
            accession=c.get("accession"),
            study_uids=tuple(c.get("study_uids", ())),
            date_from=first,
            date_to=last,
            modality=c.get("modality"),
        )


def _request(row: sqlite3.Row) -> OutputRequest:
    return OutputRequest(
        **{k: v for k, v in dict(row).items() if k != "criteria"},
        criteria=json.loads(row["criteria"]),
    )


def _get(conn: sqlite3.Connection, request_id: str) -> OutputRequest:
    row = conn.execute(
        "SELECT * FROM output_requests WHERE request_id = ?", (request_id.strip().upper(),)
    ).fetchone()
    if row is None:
        raise RequestUnknown(f"there is no output request {request_id!r}")
    return _request(row)


def _record(
    conn: sqlite3.Connection, req: OutputRequest, *, operator: str, now: datetime, change: str
) -> None:
    audit.record(
        conn,
        at=now,
        operator=operator,
        action="request",
        event_code=EVENT_ORDER_RECORD,
        target=f"request:{req.request_id}",
        details={
            "change": change,
            "facility_id": req.facility_id,
            "patient": patient_label(req.facility_id, req.patient_id),
            "criteria": req.query().audit_criteria(),
            "purpose": req.purpose,
            "requested_by": req.requested_by,
            "recorded_by": req.recorded_by,
            "export_id": req.export_id,
            "destination": req.destination,
            "note": req.note,
        },
    )


def add_request(
    conn: sqlite3.Connection,
    facility_id: str,
    *,
    patient_id: str,
    purpose: str,
    requested_by: str,
    operator: str,
    now: datetime,
    accession: str | None = None,
    study_uids: tuple[str, ...] = (),
    date: str | None = None,
    modality: str | None = None,
) -> OutputRequest:
    """Record an open request from *facility_id* for *patient_id*'s studies (narrowed by the
    optional criteria); its id is ``R`` and a sequence number."""
    if not patient_id.strip():
        raise QueryInvalid("a request needs the patient's ID (--patient-id)")
    if not purpose.strip():
        raise QueryInvalid("a request needs a --purpose: it is recorded in the audit log")
    if date:
        parse_date_range(date)  # refuse a malformed range now, not at fulfilment
    criteria: dict[str, Any] = {
        k: v
        for k, v in {
            "accession": accession,
            "study_uids": list(study_uids),
            "date": date,
            "modality": modality,
        }.items()
        if v
    }
    with transaction(conn):
        if not conn.execute(
            "SELECT 1 FROM facilities WHERE facility_id = ?", (facility_id,)
        ).fetchone():
            raise QueryInvalid(
                f"no facility {facility_id!r} is known to this archive",
                hint="Check the facility id on the clinic's receipts.",
            )
        (count,) = conn.execute("SELECT COUNT(*) FROM output_requests").fetchone()
        request_id = f"R{int(count) + 1:05d}"
        conn.execute(
            "INSERT INTO output_requests (request_id, facility_id, patient_id, criteria, "
            "purpose, requested_by, recorded_by, recorded_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open')",
            (
                request_id,
                facility_id,
                patient_id.strip(),
                json.dumps(criteria, sort_keys=True),
                purpose.strip(),
                requested_by.strip(),
                operator,
                now.isoformat(timespec="seconds"),
            ),
        )
        req = _get(conn, request_id)
        _record(conn, req, operator=operator, now=now, change="recorded")
    return req


def list_requests(
    conn: sqlite3.Connection,
    *,
    operator: str,
    now: datetime,
    status: str | None = "open",
    facility_id: str | None = None,
) -> list[OutputRequest]:
    """Requests by status (None: all) and facility, oldest first; the listing is audited."""
    if status is not None and status not in STATUSES:
        raise QueryInvalid(f"unknown status {status!r}; choose one of {', '.join(STATUSES)}")
    sql, params = "SELECT * FROM output_requests WHERE 1 = 1", []
    if status:
        sql += " AND status = ?"
        params.append(status)
    if facility_id:
        sql += " AND facility_id = ?"
        params.append(facility_id)
    found = [_request(r) for r in conn.execute(sql + " ORDER BY recorded_at, request_id", params)]
    with transaction(conn):
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="request",
            event_code=EVENT_ORDER_RECORD,
            target="requests",
            details={
                "change": "listed",
                "status": status,
                "facility_id": facility_id,
                "requests": [r.request_id for r in found],
            },
        )
    return found


def _require_open(req: OutputRequest) -> None:
    if req.status != "open":
        raise RequestClosed(
            f"request {req.request_id} is {req.status}"
            + (f" (export {req.export_id})" if req.export_id else "")
        )


def fulfil_request(
    archive: Archive,
    request_id: str,
    *,
    to: Destination,
    operator: str,
    now: datetime,
    progress: Progress | None = None,
) -> tuple[OutputRequest, ExportReport]:
    """Export what *request_id* asks for and mark it fulfilled by *operator*."""
    req = _get(archive.conn, request_id)
    _require_open(req)
    report = export_studies(
        archive,
        req.query(),
        to=to,
        purpose=f"{req.purpose} (request {req.request_id} from {req.facility_id})",
        operator=operator,
        now=now,
        request_id=req.request_id,
        progress=progress,
    )
    with transaction(archive.conn):
        _require_open(_get(archive.conn, request_id))
        archive.conn.execute(
            "UPDATE output_requests SET status = 'fulfilled', closed_by = ?, closed_at = ?, "
            "export_id = ?, destination = ? WHERE request_id = ?",
            (
                operator,
                now.isoformat(timespec="seconds"),
                report.export_id,
                report.destination,
                req.request_id,
            ),
        )
        done = _get(archive.conn, request_id)
        _record(archive.conn, done, operator=operator, now=now, change="fulfilled")
    return done, report


def cancel_request(
    conn: sqlite3.Connection, request_id: str, *, reason: str, operator: str, now: datetime
) -> OutputRequest:
    """Close an open request without exporting (the clinic withdrew it, a duplicate...)."""
    if not reason.strip():
        raise QueryInvalid("cancelling a request needs a --reason")
    with transaction(conn):
        req = _get(conn, request_id)
        _require_open(req)
        conn.execute(
            "UPDATE output_requests SET status = 'cancelled', closed_by = ?, closed_at = ?, "
            "note = ? WHERE request_id = ?",
            (operator, now.isoformat(timespec="seconds"), reason.strip(), req.request_id),
        )
        done = _get(conn, request_id)
        _record(conn, done, operator=operator, now=now, change="cancelled")
    return done
