"""`courier verify DRIVE`: check every bundle on a drive, without any secret key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from common.boundary import error_boundary
from common.errors import BundleDamaged, NotInitialised
from common.progress import cli_progress
from courier.cli.options import JsonOutput
from courier.cli.state import state
from courier.core.device import load_device


@error_boundary
def verify(
    ctx: typer.Context,
    drive: Annotated[Path, typer.Argument(help="The drive's mount point (or folder).")],
    as_json: JsonOutput = False,
) -> None:
    """Check the signature, manifests and every file of each bundle on a drive."""
    # imported when the command runs: `courier` imports every command module to start one
    from rich.console import Console
    from rich.table import Table

    from courier.core.verify import verify_drive

    try:
        own = load_device(state(ctx).home).signing_public
    except NotInitialised:
        own = None
    with cli_progress(not as_json) as progress:
        progress.phase("verify", None, unit="bytes")
        report = verify_drive(
            drive,
            own_public=own,
            on_bytes=lambda n: progress.advance(1, nbytes=n),
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        table = Table(
            "Bundle", "Facility", "Objects", "Signer", "Result", title=f"Bundles on {drive}"
        )
        for item in report.to_dict()["bundles"]:
            result = (
                "[green]valid[/green]"
                if item["valid"]
                else ("[yellow]unsealed[/yellow]" if not item["sealed"] else "[red]DAMAGED[/red]")
            )
            table.add_row(
                item["bundle_id"],
                str(item["facility_id"]),
                str(item["objects"]),
                "this laptop" if item["signed_by_this_device"] else str(item["device_id"]),
                result,
            )
        console = Console()
        console.print(table)
        for bundle in report.bundles:
            for defect in bundle.defects:
                console.print(f"  {bundle.bundle_id}: {defect.describe()}")
        for facility_id, count in report.outbox.items():
            console.print(f"Outbox: {count} document(s) from the center wait for {facility_id}.")
    bad = [b for b in report.bundles if not b.valid]
    if bad:
        raise BundleDamaged(
            f"{len(bad)} of {len(report.bundles)} bundles on {drive} did not verify",
            hint="An unsealed bundle is finished by running `courier pull` again with this drive; "
            "a damaged one must not be imported: keep the drive and call the center.",
        )
