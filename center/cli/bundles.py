"""`center bundles ...`: bundles the couriers' logs name, as the center knows them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from center.cli.options import JsonOutput
from center.cli.session import operator_session
from common.boundary import error_boundary

if TYPE_CHECKING:
    from center.core.missing import KnownBundle, MissingReport

app = typer.Typer(
    help="Bundles the couriers' visit logs name: which never arrived.", no_args_is_help=True
)


@app.command("missing")
@error_boundary
def missing(
    ctx: typer.Context,
    older_than: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--older-than",
            min=0,
            metavar="DAYS",
            help="Only bundles sealed more than DAYS days ago.",
        ),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """List bundles a courier sealed that were never imported nor released, oldest first.

    They are learnt from the courier logs of the bundles imported; the run is recorded in the
    audit log. Exit 0, even when some are missing.
    """
    # imported when the command runs: `center` imports every command module to start one
    from center.core.missing import missing_bundles

    with operator_session(ctx, "import") as session:
        report = missing_bundles(
            session.archive.conn,
            operator=session.operator,
            now=session.state.env.now(),
            older_than=older_than,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _render(report)


def _render(report: MissingReport) -> None:
    console = Console()
    if not report.missing:
        console.print("[green]No missing bundle.[/green]")
    else:
        table = Table(
            "Device",
            "Bundle",
            "Facility",
            "Sealed",
            "Age (days)",
            "Instances",
            title=f"{len(report.missing)} bundle(s) sealed but never imported",
        )
        for m in report.missing:
            bundle = m.bundle_id or f"unidentified (log position {m.log_seq})"
            if m.maybe_released:
                bundle += f"; may be released {', '.join(m.maybe_released)}"
            sealed = m.sealed or f"on or before {m.sealed_by}"
            instances = "?" if m.instances is None else str(m.instances)
            table.add_row(
                m.device_id, bundle, m.facility_id or "?", sealed, str(m.age_days), instances
            )
        console.print(table)
    pending = [r for r in report.released if not r.imported]
    if pending:
        console.print(
            f"{len(pending)} bundle(s) released by the courier as lost and not imported: "
            + ", ".join(
                r.bundle_id + ("" if r.log_seq is None else f" (log position {r.log_seq})")
                for r in pending
            )
        )


def missing_line(missing: list[KnownBundle]) -> str:
    """The summary `center import` prints when the couriers' logs name bundles not arrived."""
    maybe = sum(1 for m in missing if m.maybe_released)
    hedge = f", {maybe} of them possibly released by the courier" if maybe else ""
    return (
        f"[yellow]{len(missing)} bundle(s) the couriers sealed have not arrived (oldest sealed "
        f"{max(m.age_days for m in missing)} day(s) ago{hedge}): see `center bundles missing`.[/]"
    )
