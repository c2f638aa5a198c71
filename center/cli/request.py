"""`center request ...`: clinics' output requests, recorded then fulfilled by an export."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from center.cli import options as opt
from center.cli.export import render_export
from center.cli.session import operator_session
from common.boundary import error_boundary

app = typer.Typer(
    help="Record clinics' requests for images and fulfil them with an export.",
    no_args_is_help=True,
)

RequestId = Annotated[str, typer.Argument(help="The request id (R00001...).")]


class Status(StrEnum):
    open = "open"
    fulfilled = "fulfilled"
    cancelled = "cancelled"
    all = "all"


@app.command("add")
@error_boundary
def add(
    ctx: typer.Context,
    facility: Annotated[str, typer.Argument(help="The facility id of the clinic asking.")],
    patient_id: Annotated[str, typer.Option("--patient-id", help="The patient's ID.")],
    purpose: opt.Purpose,
    requested_by: Annotated[
        str, typer.Option("--requested-by", help="Who at the clinic asked (name, role).")
    ] = "",
    accession: opt.Accession = None,
    study: opt.StudyUid = None,
    study_date: opt.StudyDate = None,
    modality: opt.Modality = None,
    as_json: opt.JsonOutput = False,
) -> None:
    """Record a clinic's request for a patient's studies (only that clinic's studies)."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.requests import add_request

    with operator_session(ctx, "request") as session:
        req = add_request(
            session.archive.conn,
            facility,
            patient_id=patient_id,
            purpose=purpose,
            requested_by=requested_by,
            operator=session.operator,
            now=session.state.env.now(),
            accession=accession,
            study_uids=tuple(study or ()),
            date=study_date,
            modality=modality,
        )
    if as_json:
        typer.echo(json.dumps(asdict(req), indent=2))
    else:
        Console().print(f"Request [bold]{req.request_id}[/bold] recorded for {req.facility_id}.")


@app.command("list")
@error_boundary
def list_(
    ctx: typer.Context,
    status: Annotated[
        Status, typer.Option("--status", help="Which requests to show.")
    ] = Status.open,
    facility: opt.Facility = None,
    as_json: opt.JsonOutput = False,
) -> None:
    """List output requests (open ones by default), oldest first."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.requests import list_requests

    with operator_session(ctx, "request") as session:
        found = list_requests(
            session.archive.conn,
            operator=session.operator,
            now=session.state.env.now(),
            status=None if status is Status.all else status.value,
            facility_id=facility,
        )
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in found], indent=2))
        return
    table = Table(
        "Request", "Facility", "Patient ID", "Purpose", "Asked by", "Recorded", "Status", "Export"
    )
    for r in found:
        table.add_row(
            r.request_id,
            r.facility_id,
            r.patient_id,
            r.purpose,
            r.requested_by,
            f"{r.recorded_at} {r.recorded_by}",
            r.status if not r.closed_by else f"{r.status} {r.closed_at} {r.closed_by}",
            r.export_id or "",
        )
    Console().print(table)


@app.command("fulfil")
@error_boundary
def fulfil(
    ctx: typer.Context,
    request_id: RequestId,
    to: opt.ExportFolder = None,
    encrypt_to: opt.EncryptTo = None,
    to_pacs: opt.ToPacs = None,
    as_json: opt.JsonOutput = False,
) -> None:
    """Export what a request asks for (as `center export` does) and mark it fulfilled."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.export import destination
    from center.core.requests import fulfil_request
    from common.richprogress import RichProgress

    target = destination(to=to, encrypt_to=encrypt_to, to_pacs=to_pacs)
    with operator_session(ctx, "export") as session, RichProgress(enabled=not as_json) as bar:
        _req, report = fulfil_request(
            session.archive,
            request_id,
            to=target,
            operator=session.operator,
            now=session.state.env.now(),
            progress=bar,
        )
    render_export(report, as_json)


@app.command("cancel")
@error_boundary
def cancel(
    ctx: typer.Context,
    request_id: RequestId,
    reason: Annotated[str, typer.Option("--reason", help="Why no export will be made.")],
) -> None:
    """Close an open request without exporting."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.requests import cancel_request

    with operator_session(ctx, "request") as session:
        req = cancel_request(
            session.archive.conn,
            request_id,
            reason=reason,
            operator=session.operator,
            now=session.state.env.now(),
        )
    Console().print(f"Request [bold]{req.request_id}[/bold] cancelled.")
