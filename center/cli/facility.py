"""`center facility ...`: each clinic's contract on what happens when a study expires."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from center.cli import options as opt
from center.cli.session import operator_session
from common.boundary import error_boundary

app = typer.Typer(help="Facilities (clinics) and their expiry contracts.", no_args_is_help=True)


class OnExpiry(StrEnum):
    delete = "delete"
    notify = "notify"


@app.command("set")
@error_boundary
def set_(
    ctx: typer.Context,
    facility_id: Annotated[str, typer.Argument(help="The facility (clinic) id.")],
    on_expiry: Annotated[
        OnExpiry,
        typer.Option(
            "--on-expiry",
            help="delete: delete after expiry (+ grace days); notify: send an expiry notice "
            "first and delete once it was delivered at least grace days ago.",
        ),
    ],
    grace_days: Annotated[
        int, typer.Option("--grace-days", help="Days to wait (see --on-expiry).", min=0)
    ] = 0,
) -> None:
    """Set what the center does when one of the facility's studies expires (audited)."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.facilities import set_contract

    with operator_session(ctx, "facility") as session:
        before, after = set_contract(
            session.archive.conn,
            facility_id,
            on_expiry=on_expiry.value,
            grace_days=grace_days,
            operator=session.operator,
            now=session.state.env.now(),
        )
    was = "no contract" if before is None else f"{before.on_expiry}, {before.grace_days} days"
    Console().print(
        f"Facility {facility_id}: on expiry {after.on_expiry}, grace {after.grace_days} days "
        f"(was: {was})."
    )


@app.command("list")
@error_boundary
def list_(ctx: typer.Context, as_json: opt.JsonOutput = False) -> None:
    """List facilities with their number of studies and their expiry contract."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.facilities import list_facilities

    with operator_session(ctx, "facility") as session:
        rows = list_facilities(session.archive.conn)
    if as_json:
        doc = [r.__dict__ | {"contract": r.contract and r.contract.__dict__} for r in rows]
        typer.echo(json.dumps(doc, indent=2))
        return
    table = Table("Facility", "Name", "Studies", "On expiry", "Grace days", "Set by")
    for r in rows:
        c = r.contract
        table.add_row(
            r.facility_id,
            r.name,
            str(r.studies),
            c.on_expiry if c else "(no contract: nothing is deleted)",
            str(c.grace_days) if c else "",
            f"{c.updated_by} {c.updated_at}" if c else "",
        )
    Console().print(table)
