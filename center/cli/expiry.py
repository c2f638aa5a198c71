"""`center expiry ...`: expiring studies, expiry notices, and deleting what may be deleted."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from center.cli import options as opt
from center.cli.session import center_passphrase, operator_session
from common.boundary import error_boundary
from common.errors import ConfigError

if TYPE_CHECKING:
    from center.core.expiry import StudyState
    from center.core.notices import NotifyReport
    from center.core.purge import PurgeReport

app = typer.Typer(
    help="Expiring studies: list them, notify clinics, record deliveries, purge.",
    no_args_is_help=True,
)

DueWithin = Annotated[
    str,
    typer.Option(
        "--due-within",
        help="Window from today: 90d, 12w, 6m or 1y (0d: already expired).",
        metavar="DURATION",
    ),
]


@app.command("list")
@error_boundary
def list_expiring(
    ctx: typer.Context,
    due_within: DueWithin = "0d",
    facility: opt.Facility = None,
    as_json: opt.JsonOutput = False,
) -> None:
    """List studies whose expiry falls within the window, with what will happen to each."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.expiry import horizon, study_states

    with operator_session(ctx, "expiry") as session:
        now = session.state.env.now().astimezone()
        archive = session.archive
        states = study_states(
            archive.conn,
            archive.store,
            now=now,
            facility_id=facility,
            horizon=horizon(due_within, now.date()),
        )
    if as_json:
        typer.echo(json.dumps([_state_dict(s) for s in states], indent=2, default=str))
        return
    table = Table(
        "Facility",
        "Accession",
        "Study date",
        "Kept until",
        "Status",
        "May go from",
        "Why",
        title=f"Studies expiring by {horizon(due_within, now.date())}",
    )
    for s in states:
        status = s.decision.status.upper() if s.decision.status == "held" else s.decision.status
        table.add_row(
            s.study.facts.facility_id,
            s.study.accession,
            s.study.facts.study_date,
            f"{s.effective}" + (" (stale: apply)" if s.stale else ""),
            status,
            str(s.decision.due_on or ""),
            s.decision.reason,
        )
    Console().print(table if states else "No study expires in this window.")


@app.command("notify")
@error_boundary
def notify_clinics(
    ctx: typer.Context,
    due_within: DueWithin = "90d",
    facility: opt.Facility = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the notices without issuing them.")
    ] = False,
    as_json: opt.JsonOutput = False,
) -> None:
    """Issue signed expiry notices to notify-contract clinics, queued for the next visit."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.expiry import horizon
    from center.core.notices import notify

    with operator_session(ctx, "expiry") as session:
        archive = session.archive
        keys = None if dry_run else archive.unlock(center_passphrase(session.state))
        now = session.state.env.now().astimezone()
        report = notify(
            archive,
            keys,
            now=now,
            operator=session.operator,
            until=horizon(due_within, now.date()),
            facility_id=facility,
            dry_run=dry_run,
        )
    _render_notify(report, as_json)


@app.command("notices")
@error_boundary
def notices(
    ctx: typer.Context, facility: opt.Facility = None, as_json: opt.JsonOutput = False
) -> None:
    """List the expiry notices issued, and whether each reached its clinic."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.notices import list_notices

    with operator_session(ctx, "expiry") as session:
        rows = list_notices(session.archive.conn, facility_id=facility)
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    table = Table("Notice", "Facility", "Issued", "By", "Studies", "On a drive", "Delivered")
    for r in rows:
        table.add_row(
            r.notice_id,
            r.facility_id,
            r.issued_at,
            r.issued_by,
            str(r.studies),
            r.pushed_at or "not yet",
            r.delivered_at or "no",
        )
    Console().print(table)


@app.command("notice-delivered")
@error_boundary
def delivered(
    ctx: typer.Context,
    notice_id: Annotated[str, typer.Argument(help="The notice id (`center expiry notices`).")],
    on: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--on", help="The day the clinic received it (YYYY-MM-DD; default today)."),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="How you know (kept in the audit log).")] = "",
) -> None:
    """Record by hand that a clinic received an expiry notice (starts its grace period)."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.notices import notice_delivered

    with operator_session(ctx, "expiry") as session:
        now = session.state.env.now().astimezone()
        row, changed = notice_delivered(
            session.archive.conn,
            notice_id,
            delivered_on=_day(on) if on else now.date(),
            note=note,
            operator=session.operator,
            now=now,
        )
    if changed:
        Console().print(f"Notice {row.notice_id} recorded as delivered on {row.delivered_at}.")
    else:
        Console().print(
            f"Notice {row.notice_id} was already recorded as delivered on "
            f"{row.delivered_at}; nothing changed."
        )


@app.command("purge")
@error_boundary
def purge_expired(
    ctx: typer.Context,
    facility: opt.Facility = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really delete (without it: a dry run).")
    ] = False,
    as_json: opt.JsonOutput = False,
) -> None:
    """Delete expired studies that may go (not held, contract terms met). Dry run by default."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.purge import purge
    from common.richprogress import RichProgress

    with operator_session(ctx, "purge") as session, RichProgress(enabled=not as_json) as progress:
        report = purge(
            session.archive.conn,
            session.archive.store,
            now=session.state.env.now().astimezone(),
            operator=session.operator,
            facility_id=facility,
            execute=yes,
            progress=progress,
            lock_root=session.archive.paths.root,
        )
    _render_purge(report, as_json)


@app.command("tombstones")
@error_boundary
def list_tombstones(
    ctx: typer.Context, facility: opt.Facility = None, as_json: opt.JsonOutput = False
) -> None:
    """List deleted studies: what, when, by whom and under which rule and contract."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.purge import tombstones

    with operator_session(ctx, "expiry") as session:
        rows = tombstones(session.archive.conn, facility_id=facility)
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    table = Table(
        "Facility",
        "Accession",
        "Study date",
        "Instances",
        "Kept until",
        "Rule",
        "Contract",
        "Deleted",
        "By",
        "Audit",
    )
    for r in rows:
        table.add_row(
            r.facility_id,
            r.accession,
            r.study_date,
            str(r.instances),
            r.expiry,
            r.rule,
            r.on_expiry,
            r.deleted_at,
            r.deleted_by,
            str(r.audit_seq),
        )
    Console().print(table)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--on {text!r} is not a date", hint="Write it as YYYY-MM-DD.") from exc


def _state_dict(s: StudyState) -> dict[str, Any]:
    return {
        "facility_id": s.study.facts.facility_id,
        "study_instance_uid": s.study.facts.study_instance_uid,
        "accession": s.study.accession,
        "study_date": s.study.facts.study_date,
        "stored_expiry": s.study.expiry,
        "computed_expiry": s.computed.expires,
        "effective_expiry": s.effective,
        "rule": s.computed.rule,
        "holds": s.holds,
        "status": s.decision.status,
        "expired": s.decision.expired,
        "due_on": s.decision.due_on,
        "reason": s.decision.reason,
        "notice_id": s.decision.notice_id,
    }


def _render_notify(report: NotifyReport, as_json: bool) -> None:
    if as_json:
        doc = {"dry_run": report.dry_run, "notices": [n.__dict__ for n in report.notices]}
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    console = Console()
    if not report.notices:
        console.print("No study needs a notice in this window.")
    for n in report.notices:
        verb = "Would issue" if report.dry_run else "Issued"
        console.print(
            f"{verb} notice [bold]{n.notice_id}[/bold] to {n.facility_id}: "
            f"{len(n.studies)} studies, grace {n.grace_days} days."
        )
        if n.html:
            console.print(f"  printable copy: {n.html}; queued for the next courier visit.")


def _render_purge(report: PurgeReport, as_json: bool) -> None:
    if as_json:
        doc = {
            "executed": report.executed,
            "due": [_state_dict(s) for s in report.due],
            "deleted": [d.__dict__ for d in report.deleted],
            "not_due": report.not_due,
            "objects_removed": report.objects_removed,
            "bytes_freed": report.bytes_freed,
        }
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    console = Console()
    if not (report.deleted if report.executed else report.due):
        console.print("Nothing was deleted." if report.executed else "Nothing is due for deletion.")
    if report.executed:
        table = Table(
            "Facility", "Accession", "Kept until", "Rule", "Instances", "Bytes", title="Deleted"
        )
        for d in report.deleted:
            table.add_row(
                d.facility_id, d.accession, str(d.expiry), d.rule, str(d.instances), f"{d.bytes:,}"
            )
    else:
        table = Table(
            "Facility", "Accession", "Kept until", "Rule", "Why now", title="Would delete (dry run)"
        )
        for s in report.due:
            table.add_row(
                s.study.facts.facility_id,
                s.study.accession,
                str(s.effective),
                s.computed.rule,
                s.decision.reason,
            )
    if table.row_count:
        console.print(table)
    for status, count in sorted(report.not_due.items()):
        console.print(f"Expired but kept: {count} ({status}).")
    if report.executed:
        console.print(f"Removed {report.objects_removed} objects ({report.bytes_freed:,} bytes).")
    elif report.due:
        console.print("Nothing was deleted. Run again with --yes to delete these studies.")
