"""`courier deliver`: hand the clinic what the center sent, without pulling anything."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from common.boundary import error_boundary
from common.errors import OutboxDocumentRefused
from courier.cli import render
from courier.cli.options import DriveOption, FacilityArg, JsonOutput, ReceiptsOption
from courier.cli.state import state

if TYPE_CHECKING:
    from courier.core.deliver import DeliverResult


@error_boundary
def deliver(
    ctx: typer.Context,
    facility: FacilityArg,
    drive: DriveOption = "auto",
    receipts: ReceiptsOption = None,
    as_json: JsonOutput = False,
) -> None:
    """Deliver the storage receipts and notices waiting in the drive's outbox (and receipts
    kept on this laptop) to the clinic's receipts folder."""
    # imported when the command runs: `courier` imports every command module to start one
    from courier.core.deliver import deliver as run_deliver
    from courier.core.drive import open_drive
    from courier.core.drives import locate_drive
    from courier.core.facilities import receipts_for

    st = state(ctx)
    receipts_dir = receipts_for(st.home.root, facility, receipts)
    unlocked = st.unlock()
    mounted = open_drive(locate_drive(drive, st.probe))
    result = run_deliver(
        unlocked,
        facility_id=facility,
        receipts_dir=receipts_dir,
        drive=mounted,
        now=st.env.now(),
    )
    report = result.report
    if as_json:
        typer.echo(json.dumps(_as_dict(facility, result), indent=2))
    else:
        _render(facility, result)
    if report.refused:
        raise OutboxDocumentRefused(
            f"{len(report.refused)} document(s) for {facility} in the drive's outbox failed "
            "the signature check and were not delivered"
        )


def _as_dict(facility: str, result: DeliverResult) -> dict[str, Any]:
    return {
        "facility_id": facility,
        "delivered": [
            {
                "document": d.document_id,
                "kind": d.kind,
                "files": [str(p) for p in d.files],
                "confirmed_instances": d.confirmed_instances,
            }
            for d in result.report.delivered
        ],
        "not_delivered": [
            {"document": d.document_id, "reason": d.reason, "refused": d.refused}
            for d in result.report.left
        ],
        "receipts_from_laptop": [r.receipt_id for r in result.pending],
    }


def _render(facility: str, result: DeliverResult) -> None:
    from rich.console import Console

    console = Console()
    render.delivery(console, result.report)
    for outcome in result.pending:
        render.receipt(console, outcome, what="Kept receipt delivered:")
    if not result.report.delivered and not result.report.left and not result.pending:
        console.print(f"Nothing waits for {facility}.")
