"""`courier bundle ...`: the bundles this laptop made, and releasing a lost or refused one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from common.boundary import error_boundary
from courier.cli.options import JsonOutput
from courier.cli.state import state
from courier.core.device import load_device

if TYPE_CHECKING:
    from rich.console import Console

    from courier.core.release import ReleasePlan, ReleaseResult

app = typer.Typer(
    help="The bundles this laptop made; release one whose drive was lost.", no_args_is_help=True
)


@app.command("list")
@error_boundary
def list_(
    ctx: typer.Context,
    facility: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional
        typer.Argument(help="Only this facility's bundles (default: all)."),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """List the journal's bundles: facility, drive volume, sealed date, instances, how many
    the center confirmed stored and how many were released to be carried again."""
    # imported when the command runs: `courier` imports every command module to start one
    from rich.console import Console
    from rich.table import Table

    from courier.core.release import list_bundles

    found = list_bundles(load_device(state(ctx).home), facility)
    if as_json:
        typer.echo(json.dumps([b.to_dict() for b in found], indent=2))
        return
    table = Table(
        "Bundle",
        "Facility",
        "Volume",
        "Sealed",
        "Instances",
        "Confirmed",
        "Released",
        title="Bundles",
    )
    for b in found:
        sealed = b.sealed_at[:16].replace("T", " ") if b.sealed_at else "unfinished"
        released = f"{b.released} (by operator)" if b.released_by_operator else str(b.released)
        table.add_row(
            b.bundle_id,
            b.facility_id,
            b.volume_id[:8],
            sealed,
            str(b.instances),
            str(b.confirmed),
            released,
        )
    Console().print(table if found else "This laptop has made no bundle yet.")


@app.command("release")
@error_boundary
def release(
    ctx: typer.Context,
    bundle_id: Annotated[str, typer.Argument(help="The bundle to release (see `bundle list`).")],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why, in one line (e.g. 'drive lost in transit'); recorded in the courier "
            "log: name no patient.",
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOutput = False,
) -> None:
    """Release a bundle whose drive was lost, or that the center refused whole: its instances
    that no storage receipt confirms are carried again by the next pull of the clinic."""
    # imported when the command runs: `courier` imports every command module to start one
    from rich.console import Console

    from courier.core.release import release_bundle

    st = state(ctx)
    console = Console(stderr=as_json)

    def ask(plan: ReleasePlan) -> bool:
        _show_plan(console, plan)
        return typer.confirm("Release them?", default=False, err=as_json)

    result = release_bundle(
        st.unlock(), bundle_id, reason=reason, now=st.env.now(), confirm=None if yes else ask
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _show_result(console, result)
    if result.cancelled:
        raise typer.Exit(1)


def _show_plan(console: Console, plan: ReleasePlan) -> None:
    b = plan.bundle
    state_text = f"sealed {b.sealed_at}" if b.sealed_at else "unfinished (never sealed)"
    console.print(
        f"Bundle [bold]{b.bundle_id}[/bold] of facility {b.facility_id}, drive volume "
        f"{b.volume_id[:8]}, {state_text}: {b.instances} instances, {b.confirmed} confirmed "
        f"stored by the center.\n"
        f"Releasing it makes the next pull carry again [bold]{plan.instances} instances of "
        f"{plan.studies} studies[/bold] (those no storage receipt confirms)."
    )


def _show_result(console: Console, result: ReleaseResult) -> None:
    bundle_id = result.plan.bundle.bundle_id
    if result.cancelled:
        console.print("Nothing was released.")
    elif result.already_released:
        console.print(
            f"Nothing more to release in bundle {bundle_id}: its {result.plan.bundle.released} "
            "unconfirmed instances were released already (`courier log` shows when)."
        )
    else:
        console.print(
            f"Released {result.released_instances} instances of {result.released_studies} "
            f"studies of bundle {bundle_id}: the next `courier pull "
            f"{result.plan.bundle.facility_id}` carries them again."
        )
