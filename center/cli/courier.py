"""`center courier ...`: the registry of courier devices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from center.cli.options import JsonOutput
from center.cli.session import operator_session
from center.cli.state import state
from common.boundary import error_boundary

app = typer.Typer(help="Enrol, list and revoke courier devices.", no_args_is_help=True)


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
    # imported when the command runs: `center` imports every command module to start one
    from center.core.devices import enroll as enroll_device

    with operator_session(ctx, "enroll") as session:
        done = enroll_device(
            session.archive,
            card.read_bytes(),
            operator=session.operator,
            now=session.state.env.now(),
        )
    device = done.card
    verb = "Enrolled" if done.created else "Already enrolled:"
    Console().print(
        f"{verb} [bold]{device.device_id}[/bold] ({device.operator}), "
        f"fingerprint [bold]{device.fingerprint}[/bold]."
    )


@app.command("list")
@error_boundary
def list_(ctx: typer.Context, as_json: JsonOutput = False) -> None:
    """List courier devices, enrolled and revoked."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.archive import open_archive
    from center.core.devices import list_devices

    with open_archive(state(ctx).require_archive()) as archive:
        devices = list_devices(archive)
    if as_json:
        typer.echo(json.dumps([d.to_dict() for d in devices], indent=2))
        return
    table = Table("Device", "Operator", "Fingerprint", "Status", "Enrolled", "Revoked")
    for d in devices:
        revoked = f"{d.revoked_at} by {d.revoked_by}: {d.revoke_reason}" if d.revoked_at else ""
        table.add_row(d.device_id, d.operator, d.fingerprint, d.status, d.enrolled_at, revoked)
    Console().print(table)


@app.command("revoke")
@error_boundary
def revoke(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="The device id or fingerprint to revoke.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (recorded in the audit log), e.g. 'laptop lost'.")
    ],
) -> None:
    """Revoke a courier device: its bundles are refused from now on (final)."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.devices import revoke as revoke_device

    with operator_session(ctx, "revoke") as session:
        revoked = revoke_device(
            session.archive,
            device,
            reason=reason,
            operator=session.operator,
            now=session.state.env.now(),
        )
    Console().print(
        f"Device [bold]{revoked.device_id}[/bold] ({revoked.fingerprint}) is revoked since "
        f"{revoked.revoked_at}; its bundles will be refused."
    )
