"""`courier pull`: the clinic visit in one command."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from common.boundary import error_boundary
from common.progress import cli_progress
from courier.cli import render
from courier.cli.options import (
    CallingAetOption,
    DriveOption,
    FacilityArg,
    JsonOutput,
    ReceiptsOption,
    RuleOption,
    SourceOption,
    ThresholdOption,
)
from courier.cli.state import state

if TYPE_CHECKING:
    from courier.core.pull import PullResult


@error_boundary
def pull(
    ctx: typer.Context,
    facility: FacilityArg,
    source: SourceOption = None,
    drive: DriveOption = "auto",
    receipts: ReceiptsOption = None,
    rule: RuleOption = None,
    capacity_threshold: ThresholdOption = None,
    calling_aet: CallingAetOption = None,
    as_json: JsonOutput = False,
) -> None:
    """Visit a clinic: deliver its receipts, pull its flagged ("A") studies into a sealed,
    encrypted bundle on the drive, and leave a reception receipt."""
    # imported when the command runs: `courier` imports every command module to start one
    from courier.core.drive import init_drive
    from courier.core.drives import locate_drive
    from courier.core.facilities import VisitOverrides, visit_settings
    from courier.core.pull import pull as run_pull

    st = state(ctx)
    overrides = VisitOverrides(
        source, rule, None if receipts is None else str(receipts), capacity_threshold, calling_aet
    )
    settings = visit_settings(st.home.root, facility, overrides)
    unlocked = st.unlock()
    mounted = init_drive(locate_drive(drive, st.probe))
    with cli_progress(not as_json) as progress:
        result = run_pull(
            unlocked, settings=settings, drive=mounted, now=st.env.now(), progress=progress
        )
    if as_json:
        typer.echo(json.dumps(as_dict(result), indent=2))
    else:
        _render(result)


def as_dict(result: PullResult) -> dict[str, Any]:
    receipt = result.receipt
    return {
        "facility_id": result.facility_id,
        "source": result.source,
        "bundle_id": result.bundle_id,
        "instances": result.instances,
        "studies": result.studies,
        "payload_bytes": result.payload_bytes,
        "files_seen": result.plan.files_seen,
        "files_parsed": result.plan.parsed,
        "already_carried": result.plan.already_carried,
        "confirmed_stored": result.plan.confirmed,
        "not_selected": result.plan.not_selected,
        "changed": result.changed,
        "skipped": [{"file": s.relpath, "reason": s.reason} for s in result.plan.skipped],
        "receipt": str(receipt.files.html) if receipt and receipt.files else None,
        "receipt_kept_on_laptop": str(receipt.fallback) if receipt and receipt.fallback else None,
        "receipt_problem": receipt.reason if receipt else None,
        "capacity": None if result.capacity is None else result.capacity.to_dict(),
        "warnings": result.warnings,
        "resumed": result.resumed,
        "delivered": [d.document_id for d in result.delivery.delivered] if result.delivery else [],
        "not_delivered": [
            {"document": d.document_id, "reason": d.reason, "refused": d.refused}
            for d in (result.delivery.left if result.delivery else [])
        ],
        "retrieval_failures": result.node_failures,
    }


def _render(result: PullResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    render.delivery(console, result.delivery)
    for bundle_id, outcome in result.finished_earlier:
        console.print(f"Finished bundle {bundle_id} left by an interrupted pull.")
        render.receipt(console, outcome)
    render.warnings(console, result.warnings)
    plan = result.plan
    if result.bundle_id is None:
        console.print(
            f"Nothing new to carry for {result.facility_id}: {plan.already_carried} instances "
            f"already carried ({plan.confirmed} confirmed stored by the center), "
            f"{plan.not_selected} not flagged for archiving, {len(plan.skipped)} skipped."
        )
        return
    table = Table(title=f"Bundle {result.bundle_id} sealed", show_header=False)
    table.add_row("Studies", str(result.studies))
    table.add_row("Instances", str(result.instances))
    table.add_row("Encrypted bytes", render.size(result.payload_bytes))
    table.add_row("Taken again (changed since carried)", str(result.changed))
    table.add_row("Already carried before", str(plan.already_carried))
    table.add_row("Not flagged (kept at the clinic)", str(plan.not_selected))
    table.add_row("Skipped (see receipt)", str(len(plan.skipped)))
    if result.capacity is not None:
        cap = result.capacity
        table.add_row(
            "Terminal free space",
            f"{render.size(cap.free_bytes)} of {render.size(cap.total_bytes)}",
        )
    console.print(table)
    render.receipt(console, result.receipt)
