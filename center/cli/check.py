"""`center check`: fixity of the store, consistency of the catalog, integrity of the audit log."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from center.cli.options import JsonOutput
from center.cli.session import operator_session
from common.boundary import error_boundary
from common.errors import CheckFindings, ConfigError

if TYPE_CHECKING:
    from center.core.check import CheckReport


@error_boundary
def check(
    ctx: typer.Context,
    read_data: Annotated[
        bool, typer.Option("--read-data", help="Re-hash every stored object (reads everything).")
    ] = False,
    subset: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--subset",
            metavar="N/T",
            help="Re-hash N of T slices of the objects, after those of the previous run: "
            "1/T reads everything every T runs.",
        ),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Check the archive; exit non-zero on any finding."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.check import check_archive, parse_subset
    from common.richprogress import RichProgress

    if read_data and subset:
        raise ConfigError("--read-data and --subset exclude each other", hint="Choose one.")
    parts = parse_subset(subset) if subset else None
    with operator_session(ctx, "check") as session, RichProgress(enabled=not as_json) as progress:
        report = check_archive(
            session.archive,
            operator=session.operator,
            now=session.state.env.now(),
            read_data=read_data,
            subset=parts,
            progress=progress,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _render(report)
    if not report.ok:
        kinds = sorted({f.kind for f in report.findings})
        raise CheckFindings(f"{len(report.findings)} finding(s): {', '.join(kinds)}")


def _render(report: CheckReport) -> None:
    console = Console()
    read = f", {report.objects_read} re-hashed ({report.bytes_read:,} bytes)"
    slices = f", slices {report.slices} of {report.total_slices}" if report.slices else ""
    console.print(
        f"Checked {report.objects_cataloged} cataloged and {report.objects_stored} stored "
        f"objects{read if report.objects_read else ''}{slices}; "
        f"{report.quarantined} quarantined object(s) on record."
    )
    if report.audit is not None:
        console.print(
            f"Audit log: {report.audit.entries} entries, {report.audit.checkpoints} checkpoint(s)."
        )
    if report.ok:
        console.print("[green]No findings.[/green]")
        return
    table = Table("Finding", "Target", "Detail", title="Findings")
    for f in report.findings:
        table.add_row(f.kind, f.target, f.detail)
    console.print(table)
