"""`courier pull`: the clinic visit in one command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from common.boundary import error_boundary, read_passphrase
from common.richprogress import RichProgress
from courier.cli.options import DrivePath, JsonOutput
from courier.cli.state import PASSPHRASE_PREFIX, state
from courier.core.device import load_device, unlock
from courier.core.drive import init_drive
from courier.core.pull import PullResult
from courier.core.pull import pull as run_pull
from courier.core.selection import SelectionRule


@error_boundary
def pull(
    ctx: typer.Context,
    facility: Annotated[str, typer.Argument(help="The clinic's facility id.")],
    source: Annotated[Path, typer.Option("--source", help="The clinic terminal's DICOM folder.")],
    drive: DrivePath,
    receipts: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--receipts", help="Folder at the clinic where the reception receipt goes."),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Pull the clinic's flagged ("A") studies onto the drive as a sealed, encrypted bundle."""
    st = state(ctx)
    device = load_device(st.home)
    unlocked = unlock(
        device, read_passphrase(st.env.environ, PASSPHRASE_PREFIX, prompt="Device passphrase")
    )
    mounted = init_drive(drive)
    with RichProgress(enabled=not as_json) as progress:
        result = run_pull(
            unlocked,
            facility_id=facility,
            source_root=source,
            drive=mounted,
            rule=SelectionRule(),
            receipts_dir=receipts,
            now=st.env.now(),
            progress=progress,
        )
    if as_json:
        typer.echo(json.dumps(_as_dict(result), indent=2))
    else:
        _render(result)


def _as_dict(result: PullResult) -> dict[str, object]:
    return {
        "facility_id": result.facility_id,
        "bundle_id": result.bundle_id,
        "instances": result.instances,
        "studies": result.studies,
        "payload_bytes": result.payload_bytes,
        "files_seen": result.plan.files_seen,
        "already_carried": result.plan.already_carried,
        "not_selected": result.plan.not_selected,
        "changed": result.changed,
        "skipped": [{"file": s.relpath, "reason": s.reason} for s in result.plan.skipped],
        "receipt": str(result.receipt.html) if result.receipt else None,
    }


def _render(result: PullResult) -> None:
    console = Console()
    if result.bundle_id is None:
        console.print(
            f"Nothing new to carry for {result.facility_id}: "
            f"{result.plan.already_carried} instances already carried, "
            f"{result.plan.not_selected} not flagged for archiving."
        )
        return
    table = Table(title=f"Bundle {result.bundle_id} sealed", show_header=False)
    table.add_row("Studies", str(result.studies))
    table.add_row("Instances", str(result.instances))
    table.add_row("Encrypted bytes", f"{result.payload_bytes:,}")
    table.add_row("Already carried before", str(result.plan.already_carried))
    table.add_row("Not flagged (kept at the clinic)", str(result.plan.not_selected))
    table.add_row("Skipped (see receipt)", str(len(result.plan.skipped)))
    console.print(table)
    if result.receipt:
        console.print(f"Reception receipt for the clinic: {result.receipt.html}")
