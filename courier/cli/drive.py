"""`courier drive ...` and `courier drives`: prepare and find removable drives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from common.boundary import error_boundary
from courier.cli import render
from courier.cli.options import JsonOutput
from courier.cli.state import state

app = typer.Typer(help="Prepare and inspect courier drives.", no_args_is_help=True)


@app.command("init")
@error_boundary
def init(
    path: Annotated[Path, typer.Argument(help="Mount point of the drive (or a folder).")],
) -> None:
    """Mark a drive as a courier drive (keeps an existing mark)."""
    # imported when the command runs: `courier` imports every command module to start one
    from rich.console import Console

    from courier.core.drive import init_drive

    drive = init_drive(path)
    Console().print(f"{drive.root} is a courier drive (volume {drive.volume_id[:8]}).")


@error_boundary
def drives(ctx: typer.Context, as_json: JsonOutput = False) -> None:
    """List the removable drives plugged in: device, model, size, free space, mount point,
    and whether each is a courier drive."""
    # imported when the command runs: `courier` imports every command module to start one
    from rich.console import Console
    from rich.table import Table

    from courier.core.drives import list_drives

    found = list_drives(state(ctx).probe)
    if as_json:
        typer.echo(json.dumps([d.to_dict() for d in found], indent=2))
        return
    if not found:
        Console().print("No removable drive is plugged in.")
        return
    table = Table(
        "Device", "Model", "Size", "Free", "Mounted at", "Courier drive", title="Removable drives"
    )
    for d in found:
        table.add_row(
            d.device,
            d.model,
            render.size(d.size_bytes),
            render.size(d.free_bytes) if d.free_bytes is not None else "-",
            str(d.mount_point) if d.mount_point else "not mounted",
            "yes" if d.courier else "no",
        )
    Console().print(table)
