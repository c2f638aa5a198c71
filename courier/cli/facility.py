"""`courier facility ...`: the clinics this laptop visits, so a visit is `courier pull ID`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from common.boundary import error_boundary
from courier.cli.options import (
    CallingAetOption,
    FacilityArg,
    JsonOutput,
    ReceiptsOption,
    RuleOption,
    ThresholdOption,
)
from courier.cli.state import state
from courier.core.facilities import (
    Facility,
    add_facility,
    get_facility,
    load_facilities,
    remove_facility,
)
from courier.core.selection import DEFAULT_RULE
from courier.core.source import DEFAULT_CALLING_AET

app = typer.Typer(
    help="Configure the clinics (facilities) this laptop visits.", no_args_is_help=True
)


@app.command("add")
@error_boundary
def add(
    ctx: typer.Context,
    facility_id: FacilityArg,
    name: Annotated[str, typer.Option("--name", help="The clinic's name, for the operator.")],
    source: Annotated[
        str,
        typer.Option(
            "--source", help="The terminal's DICOM folder, or dicom://AET@host:port for its PACS."
        ),
    ],
    rule: RuleOption = None,
    receipts: ReceiptsOption = None,
    capacity_threshold: ThresholdOption = None,
    calling_aet: CallingAetOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite the settings of an existing facility.")
    ] = False,
) -> None:
    """Add a clinic, with where its studies are and how it flags them for archiving."""
    from rich.console import Console

    facility = Facility(
        facility_id=facility_id,
        name=name,
        source=source,
        rule=rule or DEFAULT_RULE,
        receipts=None if receipts is None else str(receipts),
        capacity_threshold=capacity_threshold,
        calling_aet=calling_aet or DEFAULT_CALLING_AET,
    )
    add_facility(state(ctx).home.root, facility, replace_existing=replace)
    Console().print(
        f"Facility [bold]{facility_id}[/bold] saved; a visit is `courier pull {facility_id}`."
    )


@app.command("list")
@error_boundary
def list_(ctx: typer.Context, as_json: JsonOutput = False) -> None:
    """List the configured clinics."""
    from rich.console import Console
    from rich.table import Table

    facilities = load_facilities(state(ctx).home.root)
    if as_json:
        typer.echo(json.dumps([f.to_dict() for f in facilities.values()], indent=2))
        return
    table = Table("Id", "Name", "Source", "Rule", title="Facilities")
    for f in facilities.values():
        table.add_row(f.facility_id, f.name, f.source, f.rule)
    Console().print(table if facilities else "No facility configured yet: `courier facility add`.")


@app.command("show")
@error_boundary
def show(ctx: typer.Context, facility_id: FacilityArg, as_json: JsonOutput = False) -> None:
    """Show one clinic's settings."""
    from rich.console import Console
    from rich.table import Table

    facility = get_facility(state(ctx).home.root, facility_id)
    if as_json:
        typer.echo(json.dumps(facility.to_dict(), indent=2))
        return
    table = Table(show_header=False, title=f"Facility {facility_id}")
    for key, value in facility.to_dict().items():
        table.add_row(key, "" if value is None else str(value))
    Console().print(table)


@app.command("remove")
@error_boundary
def remove(
    ctx: typer.Context,
    facility_id: FacilityArg,
    as_json: JsonOutput = False,
) -> None:
    """Forget a clinic's settings (the journal keeps what was carried from it)."""
    from rich.console import Console

    removed = remove_facility(state(ctx).home.root, facility_id)
    if as_json:
        typer.echo(json.dumps(removed.to_dict(), indent=2))
    else:
        Console().print(f"Facility {facility_id} removed.")
