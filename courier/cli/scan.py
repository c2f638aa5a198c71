"""`courier scan`: what a pull would take, without copying."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from common.boundary import error_boundary
from common.progress import cli_progress
from courier.cli import render
from courier.cli.options import FacilityArg, JsonOutput, RuleOption, SourceOption, ThresholdOption
from courier.cli.state import state

if TYPE_CHECKING:
    from courier.core.scan import ScanResult


@error_boundary
def scan(
    ctx: typer.Context,
    facility: FacilityArg,
    source: SourceOption = None,
    rule: RuleOption = None,
    capacity_threshold: ThresholdOption = None,
    as_json: JsonOutput = False,
) -> None:
    """Show what a pull would take (studies, instances, sizes; what is already carried or
    confirmed stored; what is skipped and why), without copying anything."""
    # imported when the command runs, not when `courier` starts (docs/performance.md)
    from common.heap import frozen_after_pauses
    from courier.core.facilities import VisitOverrides, visit_settings
    from courier.core.scan import scan as run_scan

    st = state(ctx)
    overrides = VisitOverrides(source=source, rule=rule, capacity_threshold=capacity_threshold)
    settings = visit_settings(st.home.root, facility, overrides)
    unlocked = st.unlock()
    # the plan lives until the command ends: frozen, the collector never goes through it again
    with cli_progress(not as_json) as progress, frozen_after_pauses():
        result = run_scan(unlocked, settings, st.env.now(), progress)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _render(result)


def _render(result: ScanResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        "Accession",
        "Study date",
        "Modality",
        "Description",
        "Instances",
        "Size",
        title=f"A pull of {result.facility_id} would take",
    )
    for s in result.studies:
        note = f" ({s.changed} changed)" if s.changed else ""
        table.add_row(
            s.accession,
            s.study_date,
            s.modality,
            s.description,
            f"{s.instances}{note}",
            render.size(s.bytes),
        )
    table.add_section()
    table.add_row(
        "Total",
        "",
        "",
        f"{len(result.studies)} studies",
        str(result.instances),
        render.size(result.bytes),
    )
    console.print(table)
    plan = result.plan
    console.print(
        f"Rule: {plan.rule}. Already carried: {plan.already_carried} instances "
        f"({plan.confirmed} confirmed stored by the center). Not flagged: {plan.not_selected}. "
        f"Skipped: {len(plan.skipped)}."
    )
    for item in plan.skipped[:20]:
        console.print(f"  skipped {item.relpath}: {item.reason}")
    if len(plan.skipped) > 20:
        console.print(f"  ... and {len(plan.skipped) - 20} more (see --json)")
    if result.capacity is not None:
        cap = result.capacity
        console.print(
            f"Terminal: {render.size(cap.free_bytes)} free of {render.size(cap.total_bytes)}, "
            f"DICOM data {render.size(cap.dicom_bytes)}."
        )
        if warning := cap.warning():
            render.warnings(console, [warning])
