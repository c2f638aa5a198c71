"""`center courier ...`: the registry of courier devices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from center.cli.session import operator_session
from center.cli.state import state
from center.core.archive import open_archive
from center.core.devices import enroll as enroll_device
from center.core.devices import list_devices
from common.boundary import error_boundary

app = typer.Typer(help="Enrol and list courier devices.", no_args_is_help=True)


@app.command("enroll")
@error_boundary
def enroll(
    ctx: typer.Context,
    card: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="The device card file from `courier init`."
        ),
    ],
) -> None:
    """Allow a courier device to deliver bundles (check its fingerprint with the courier)."""
    with operator_session(ctx, "enroll") as session:
        device = enroll_device(
            session.archive,
            card.read_bytes(),
            operator=session.operator,
            now=session.state.env.now(),
        )
    Console().print(
        f"Enrolled [bold]{device.device_id}[/bold] ({device.operator}), "
        f"fingerprint [bold]{device.fingerprint}[/bold]."
    )


@app.command("list")
@error_boundary
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List enrolled courier devices."""
    st = state(ctx)
    with open_archive(st.require_archive()) as archive:
        devices = list_devices(archive)
    if as_json:
        typer.echo(json.dumps([d.__dict__ for d in devices], indent=2))
        return
    table = Table("Device", "Operator", "Fingerprint", "Status", "Enrolled")
    for d in devices:
        table.add_row(d.device_id, d.operator, d.fingerprint, d.status, d.enrolled_at)
    Console().print(table)
