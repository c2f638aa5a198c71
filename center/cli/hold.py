"""`center hold ...`: legal holds on studies or patients (a held study is never deleted)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from center.cli import options as opt
from center.cli.session import operator_session
from common.boundary import error_boundary
from common.errors import ConfigError

if TYPE_CHECKING:
    from center.core.holds import Hold

app = typer.Typer(help="Legal holds: keep studies whatever their expiry.", no_args_is_help=True)

Reason = Annotated[
    str,
    typer.Option("--reason", help="Why (kept in the audit log; name a case, not the patient)."),
]


@app.command("add")
@error_boundary
def add(
    ctx: typer.Context,
    reason: Reason,
    study: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--study", help="Hold this study (accession or Study Instance UID)."),
    ] = None,
    patient: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--patient", help="Hold every study of this patient ID (needs --facility)."),
    ] = None,
    facility: opt.Facility = None,
    as_json: opt.JsonOutput = False,
) -> None:
    """Place a legal hold on one study, or on all studies of a patient at a facility."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.holds import add_hold
    from center.core.studyref import find_study

    if (study is None) == (patient is None):
        raise ConfigError("give either --study or --patient", hint="See --help.")
    if patient is not None and facility is None:
        raise ConfigError("--patient needs --facility: patient IDs are per clinic")
    with operator_session(ctx, "hold") as session:
        conn = session.archive.conn
        hold = add_hold(
            conn,
            reason=reason,
            operator=session.operator,
            now=session.state.env.now(),
            study=find_study(conn, study, facility) if study else None,
            facility_id=facility or "",
            patient_id=patient or "",
        )
    _print([hold], as_json, f"Placed hold {hold.hold_id}.")


@app.command("remove")
@error_boundary
def remove(
    ctx: typer.Context,
    hold_id: Annotated[int, typer.Argument(help="The hold's number (`center hold list`).")],
    reason: Reason,
    as_json: opt.JsonOutput = False,
) -> None:
    """Release a legal hold (it stays on record with who released it and why)."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.holds import release_hold

    with operator_session(ctx, "hold") as session:
        hold = release_hold(
            session.archive.conn,
            hold_id,
            reason=reason,
            operator=session.operator,
            now=session.state.env.now(),
        )
    _print([hold], as_json, f"Released hold {hold.hold_id}.")


@app.command("list")
@error_boundary
def list_(
    ctx: typer.Context,
    include_released: Annotated[
        bool, typer.Option("--all", help="Include released holds.")
    ] = False,
    facility: opt.Facility = None,
    as_json: opt.JsonOutput = False,
) -> None:
    """List the active legal holds (with --all, released ones too)."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.holds import list_holds

    with operator_session(ctx, "hold") as session:
        holds = list_holds(
            session.archive.conn, include_released=include_released, facility_id=facility
        )
    _print(holds, as_json, "" if holds else "No holds.")


def _print(holds: list[Hold], as_json: bool, message: str) -> None:
    if as_json:
        typer.echo(json.dumps([h.__dict__ | {"active": h.active} for h in holds], indent=2))
        return
    table = Table("Hold", "Facility", "On", "Reason", "Placed", "By", "Released")
    for h in holds:
        target = (
            f"study {h.accession or h.study_instance_uid}"
            if h.scope == "study"
            else (f"patient {h.patient_id}")
        )
        released = (
            f"{h.released_at} by {h.released_by}: {h.release_reason}" if h.released_at else ""
        )
        table.add_row(
            str(h.hold_id), h.facility_id, target, h.reason, h.placed_at, h.placed_by, released
        )
    console = Console()
    if holds:
        console.print(table)
    if message:
        console.print(message)
