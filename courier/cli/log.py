"""`courier log`: past visits from this laptop's journal."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from common.boundary import error_boundary
from courier.cli import render
from courier.cli.options import JsonOutput
from courier.cli.state import state
from courier.core.device import load_device


@error_boundary
def log(
    ctx: typer.Context,
    facility: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="Only this facility's visits (default: all)."),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Show past visits: date, operator, facility, bundle, counts, bytes, the terminal's
    capacity and warnings; bundles released as lost (`courier bundle release`); and whether
    the courier log's hash chain is intact."""
    # imported when the command runs: `courier` imports every command module to start one
    from rich.console import Console
    from rich.table import Table

    from courier.core.history import visit_log

    result = visit_log(load_device(state(ctx).home), facility)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console = Console()
    table = Table(
        "Date",
        "Facility",
        "Operator",
        "Bundle",
        "Instances",
        "Bytes",
        "Skipped",
        "Terminal free",
        "Warnings",
        title="Visits",
    )
    for v in result.visits:
        s = v.summary
        cap = s.get("capacity") or {}
        free = (
            f"{render.size(cap['free_bytes'])} of {render.size(cap['total_bytes'])}" if cap else "-"
        )
        table.add_row(
            v.started[:16].replace("T", " "),
            v.facility_id,
            v.operator,
            v.bundle_id or "(none)",
            str(s.get("objects", 0)),
            render.size(int(s.get("bytes", 0))),
            str(s.get("skipped_count", 0)),
            free,
            "\n".join(s.get("warnings", [])) or "-",
        )
    console.print(table)
    if result.releases:
        released = Table(
            "Date",
            "Facility",
            "Operator",
            "Bundle",
            "Instances",
            "Reason",
            title="Bundles released",
        )
        for r in result.releases:
            released.add_row(
                r.released_at[:16].replace("T", " "),
                r.facility_id,
                r.operator,
                r.bundle_id,
                str(r.instances),
                r.reason,
            )
        console.print(released)
    if result.chain_problems:
        render.warnings(console, [f"courier log: {p}" for p in result.chain_problems])
    else:
        console.print(f"Courier log: {result.chain_entries} entries, hash chain intact.")
