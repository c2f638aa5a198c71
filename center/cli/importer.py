"""`center import DRIVE`: verify and store every sealed bundle on a courier drive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from center.cli.session import operator_session
from center.cli.state import PASSPHRASE_PREFIX
from center.core.importer import ImportReport
from center.core.importer import import_drive as run_import
from center.core.studies import StudyRow, studies_of_bundles
from common.boundary import error_boundary, read_passphrase
from common.richprogress import RichProgress


@error_boundary
def import_drive(
    ctx: typer.Context,
    drive: Annotated[Path, typer.Argument(help="The courier drive's mount point.")],
    bundle: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--bundle", help="Import only this bundle id."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Verify, decrypt and store the drive's sealed bundles; write storage receipts."""
    with operator_session(ctx, "import") as session:
        archive = session.archive
        keys = archive.unlock(
            read_passphrase(
                session.state.env.environ, PASSPHRASE_PREFIX, prompt="Center passphrase"
            )
        )
        with RichProgress(enabled=not as_json) as progress:
            report = run_import(
                archive,
                keys,
                drive,
                operator=session.operator,
                now=session.state.env.now(),
                only_bundle=bundle,
                progress=progress,
            )
        studies = studies_of_bundles(
            archive, [o.bundle_id for o in report.outcomes if o.status in ("imported", "partial")]
        )
    if as_json:
        typer.echo(json.dumps(_as_dict(report, studies), indent=2))
    else:
        _render(report, studies)
    if any(o.status == "refused" for o in report.outcomes):
        raise typer.Exit(20)


def _as_dict(report: ImportReport, studies: list[StudyRow]) -> dict[str, object]:
    return {
        "drive": str(report.drive),
        "bundles": [
            {
                **{k: v for k, v in o.__dict__.items() if k not in ("receipt", "outbox")},
                "receipt": str(o.receipt) if o.receipt else None,
                "outbox": [str(p) for p in o.outbox],
            }
            for o in report.outcomes
        ],
        "studies": [s.__dict__ for s in studies],
    }


def _render(report: ImportReport, studies: list[StudyRow]) -> None:
    console = Console()
    table = Table(
        "Bundle",
        "Facility",
        "Outcome",
        "Objects",
        "New",
        "Studies",
        "Note",
        title=f"Import of {report.drive}",
    )
    for o in report.outcomes:
        style = {"refused": "red", "unsealed": "yellow"}.get(o.status, "")
        table.add_row(
            o.bundle_id,
            o.facility_id,
            f"[{style}]{o.status}[/]" if style else o.status,
            str(o.objects),
            str(o.stored),
            str(o.studies),
            o.reason,
        )
    console.print(table)
    if studies:
        st = Table(
            "Facility",
            "Accession",
            "Study date",
            "Modality",
            "Instances",
            "Bytes",
            "Expires",
            title="Studies stored",
        )
        for s in studies:
            st.add_row(
                s.facility_id,
                s.accession,
                s.study_date,
                s.modalities,
                str(s.instances),
                f"{s.bytes:,}",
                s.expiry,
            )
        console.print(st)
    for o in report.outcomes:
        if o.receipt:
            console.print(f"Storage receipt: {o.receipt}")
            console.print(f"  encrypted copy for the clinic in {o.outbox[0].parent}")
