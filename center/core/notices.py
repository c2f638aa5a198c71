"""Expiry notices: telling a clinic which studies will be deleted, and when (issue 5, C1, C2).

For a facility whose contract is ``notify``, :func:`notify` lists the studies whose expiry
falls within the chosen window and that no current notice names yet, and issues one signed
document for the facility (``kind: expiry-notice``; JSON, signature and a printable HTML page,
like a receipt). It is kept in ``<archive>/notices/<facility>/`` and queued in the drive outbox,
so the next courier visit delivers it. The courier's signed delivery confirmation, read by
``center import``, records the delivery; ``center expiry notice-delivered`` records one by hand
(audited). A study under a notify contract is deleted only once a notice naming it was delivered
at least the grace period ago (:func:`center.core.expiry.decide`).

Each study's deletion date on the notice is the later of the day after its expiry and the
issue date plus the grace period; the study is also never deleted before the grace period has
run from the day the notice reached the clinic.
"""

from __future__ import annotations

import html
import secrets
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from center.core import audit
from center.core.expiry import NOTICE_NEEDED, StudyState, study_states
from center.core.facilities import NOTIFY
from center.core.outbox import mark_delivered, queue_document
from center.core.retention_facts import transaction_of
from common.errors import ConfigError, NoticeNotFound
from common.fsio import atomic_write
from common.receipts import issuer, write_receipt

if TYPE_CHECKING:
    from center.core.archive import Archive, CenterKeys

KIND = "expiry-notice"
TITLE = "Expiry notice"
NOTICES_DIR = "notices"


@dataclass(frozen=True)
class IssuedNotice:
    notice_id: str
    facility_id: str
    grace_days: int
    studies: list[dict[str, Any]]
    html: Path | None = None


@dataclass
class NotifyReport:
    dry_run: bool
    notices: list[IssuedNotice] = field(default_factory=list)


def _rows(conn: sqlite3.Connection, state: StudyState, deletion: date) -> dict[str, Any]:
    count, size = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(i.size), 0) FROM instances i "
        "JOIN series se ON se.series_pk = i.series_pk WHERE se.study_pk = ?",
        (state.study.study_pk,),
    ).fetchone()
    facts = state.study.facts
    return {
        "study_instance_uid": facts.study_instance_uid,
        "accession": state.study.accession,
        "study_date": facts.study_date,
        "modality": "/".join(sorted(facts.modalities)),
        "description": facts.description,
        "instances": int(count),
        "bytes": int(size),
        "expiry": state.effective.isoformat(),
        "delete_on_or_after": deletion.isoformat(),
        "rule": state.computed.rule
        if state.computed.expires >= state.study.expiry
        else state.study.expiry_rule,
    }


def notify(
    archive: Archive,
    keys: CenterKeys | None,
    *,
    now: datetime,
    operator: str,
    until: date,
    facility_id: str | None = None,
    dry_run: bool = False,
) -> NotifyReport:
    """Issue one notice per notify-contract facility for its studies expiring by *until*.

    With *dry_run* (or no *keys*), nothing is written: the report shows what would be sent.
    """
    conn = archive.conn
    today = now.date()
    groups: dict[str, list[StudyState]] = defaultdict(list)
    for state in study_states(conn, archive.store, now=now, facility_id=facility_id, horizon=until):
        contract = state.contract
        if contract and contract.on_expiry == NOTIFY and state.decision.status == NOTICE_NEEDED:
            groups[state.study.facts.facility_id].append(state)
    report = NotifyReport(dry_run=dry_run or keys is None)
    for facility, states in sorted(groups.items()):
        grace = max(s.contract.grace_days for s in states if s.contract)
        notice_id = f"expiry-{facility}-{today:%Y%m%d}-{secrets.token_hex(3)}"
        rows = [
            _rows(conn, s, max(s.effective + timedelta(days=1), today + timedelta(days=grace)))
            for s in states
        ]
        notice = IssuedNotice(notice_id, facility, grace, rows)
        if not report.dry_run and keys is not None:
            notice = _issue(archive, keys, notice, now=now, operator=operator)
        report.notices.append(notice)
    return report


def _document(archive: Archive, notice: IssuedNotice, now: datetime) -> dict[str, Any]:
    studies = notice.studies
    return {
        "kind": KIND,
        "version": 1,
        "receipt_id": notice.notice_id,
        "issued": now.isoformat(timespec="seconds"),
        "facility_id": notice.facility_id,
        "issuer": issuer("center", archive.card.center_name, archive.card.signing_public),
        "grace_days": notice.grace_days,
        "studies": studies,
        "totals": {
            "studies": len(studies),
            "instances": sum(int(s["instances"]) for s in studies),
            "bytes": sum(int(s["bytes"]) for s in studies),
        },
        "warnings": [
            "These studies reach the end of the period the archive keeps them for. Each will "
            "be deleted on or after the date shown, and never sooner than "
            f"{notice.grace_days} days after this notice reaches you. To keep a study longer, "
            "contact the storage center before that date."
        ],
    }


def _issue(
    archive: Archive, keys: CenterKeys, notice: IssuedNotice, *, now: datetime, operator: str
) -> IssuedNotice:
    document = _document(archive, notice, now)
    folder = archive.paths.root / NOTICES_DIR / notice.facility_id
    files = write_receipt(folder, document, keys.signing_seed, title=TITLE)
    atomic_write(files.html, render_notice_html(document).encode())
    conn = archive.conn
    with transaction_of(conn):
        conn.execute(
            "INSERT INTO expiry_notices VALUES (?, ?, ?, ?, ?)",
            (
                notice.notice_id,
                notice.facility_id,
                now.isoformat(timespec="seconds"),
                operator,
                notice.grace_days,
            ),
        )
        conn.executemany(
            "INSERT INTO expiry_notice_studies VALUES (?, ?, ?, ?, ?)",
            [
                (
                    notice.notice_id,
                    notice.facility_id,
                    s["study_instance_uid"],
                    s["expiry"],
                    s["delete_on_or_after"],
                )
                for s in notice.studies
            ],
        )
        queue_document(
            conn,
            archive.paths,
            document_id=notice.notice_id,
            facility_id=notice.facility_id,
            kind=KIND,
            now=now,
            files=[files.json, files.signature, files.html],
        )
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="expiry-notice",
            event_code=audit.EVENT_INSTANCES_ACCESSED,
            target=f"notice:{notice.notice_id}",
            details={
                "facility_id": notice.facility_id,
                "studies": len(notice.studies),
                "grace_days": notice.grace_days,
            },
        )
    return IssuedNotice(
        notice.notice_id, notice.facility_id, notice.grace_days, notice.studies, files.html
    )


@dataclass(frozen=True)
class NoticeRow:
    notice_id: str
    facility_id: str
    issued_at: str
    issued_by: str
    grace_days: int
    studies: int
    pushed_at: str | None
    delivered_at: str | None
    confirmation: str | None


def list_notices(conn: sqlite3.Connection, *, facility_id: str | None = None) -> list[NoticeRow]:
    """Every expiry notice with its delivery state (from the outbox)."""
    rows = conn.execute(
        "SELECT n.notice_id, n.facility_id, n.issued_at, n.issued_by, n.grace_days, "
        "(SELECT COUNT(*) FROM expiry_notice_studies s WHERE s.notice_id = n.notice_id), "
        "o.pushed_at, o.delivered_at, o.confirmation FROM expiry_notices n "
        "LEFT JOIN outbox_documents o ON o.document_id = n.notice_id "
        "WHERE (? IS NULL OR n.facility_id = ?) ORDER BY n.issued_at, n.notice_id",
        (facility_id, facility_id),
    )
    return [NoticeRow(*row) for row in rows]


def notice_delivered(
    conn: sqlite3.Connection,
    notice_id: str,
    *,
    delivered_on: date,
    note: str,
    operator: str,
    now: datetime,
) -> tuple[NoticeRow, bool]:
    """Record by hand that the clinic received a notice; (notice, changed). Audited.

    A delivery recorded already (by a courier's confirmation or by hand) is left as it is.
    """
    found = [n for n in list_notices(conn) if n.notice_id == notice_id]
    if not found:
        raise NoticeNotFound(f"there is no expiry notice {notice_id!r}")
    if delivered_on > now.date():
        raise ConfigError(
            f"the delivery date {delivered_on} is in the future",
            hint="Give the day the clinic received the notice (--on YYYY-MM-DD), today or earlier.",
        )
    with transaction_of(conn):
        changed = mark_delivered(
            conn,
            notice_id,
            delivered_at=delivered_on.isoformat(),
            confirmation={"kind": "recorded-by-hand", "operator": operator, "note": note},
        )
        if changed:
            audit.record(
                conn,
                at=now,
                operator=operator,
                action="notice-delivered",
                event_code=audit.EVENT_INSTANCES_ACCESSED,
                target=f"notice:{notice_id}",
                details={"delivered_on": delivered_on.isoformat(), "note": note},
            )
    return next(n for n in list_notices(conn) if n.notice_id == notice_id), changed


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#111}"
    "table{border-collapse:collapse;width:100%;margin:1em 0}"
    "th,td{border:1px solid #999;padding:.3em .5em;text-align:left}th{background:#eee}"
    "td.n{text-align:right}.warn{border:2px solid #b00;padding:.5em;font-weight:600}"
    ".fp{font-family:monospace}@media print{body{margin:0}}"
)


def render_notice_html(doc: dict[str, Any]) -> str:
    """The printable page of an expiry notice (self-contained, no scripts)."""
    e = html.escape
    who = doc["issuer"]
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(str(s[k]))}</td>"
            for k in ("accession", "study_date", "modality", "description")
        )
        + f'<td class="n">{int(s["instances"])}</td><td>{e(s["expiry"])}</td>'
        + f"<td><b>{e(s['delete_on_or_after'])}</b></td></tr>"
        for s in doc["studies"]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{TITLE} {e(doc['receipt_id'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>{TITLE}</h1><table>"
        f"<tr><td>Notice</td><td>{e(doc['receipt_id'])}</td></tr>"
        f"<tr><td>Issued</td><td>{e(doc['issued'])}</td></tr>"
        f"<tr><td>Facility</td><td>{e(doc['facility_id'])}</td></tr>"
        f"<tr><td>Issued by</td><td>{e(who['name'])} ({e(who['kind'])})</td></tr>"
        f"<tr><td>Grace period</td><td>{int(doc['grace_days'])} days</td></tr></table>"
        + "".join(f'<p class="warn">{e(w)}</p>' for w in doc.get("warnings", []))
        + f"<h2>Studies to be deleted ({doc['totals']['studies']})</h2><table><tr>"
        "<th>Accession</th><th>Study date</th><th>Modality</th><th>Description</th>"
        "<th>Instances</th><th>Kept until</th><th>Deleted on or after</th></tr>"
        f"{rows}</table><p>Signed by key fingerprint "
        f'<span class="fp">{e(who["fingerprint"])}</span>. The file with the same name ending in '
        "<code>.json</code> is the signed record; this page is a readable copy.</p>"
        "</body></html>\n"
    )
