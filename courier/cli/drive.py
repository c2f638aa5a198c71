"""`courier drive ...`: prepare a removable drive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from common.boundary import error_boundary
from courier.core.drive import init_drive

app = typer.Typer(help="Prepare and inspect courier drives.", no_args_is_help=True)


@app.command("init")
@error_boundary
def init(
    path: Annotated[Path, typer.Argument(help="Mount point of the drive (or a folder).")],
) -> None:
    """Mark a drive as a courier drive (keeps an existing mark)."""
    drive = init_drive(path)
    Console().print(f"{drive.root} is a courier drive (volume {drive.volume_id[:8]}).")
