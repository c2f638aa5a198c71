"""`center import DRIVE`: verify and store every sealed bundle on a courier drive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Column, Table

from center.cli.bundles import missing_line
from center.cli.options import JsonOutput
from center.cli.session import center_passphrase, operator_session
from common.boundary import error_boundary
from common.errors import ALL_ERRORS, BundleError, BundlePartial

if TYPE_CHECKING:
    from center.core.importreport import ImportReport
    from center.core.studies import StudyRow


@error_boundary
def import_drive(
    ctx: typer.Context,
    drive: Annotated[Path, typer.Argument(help="The courier drive's mount point.")],
    bundle: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--bundle", help="Import only this bundle id."),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Verify, decrypt and store the drive's sealed bundles; write storage receipts."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.importer import import_drive as run_import
    from center.core.studies import studies_of_bundles
    from common.richprogress import RichProgress

    with operator_session(ctx, "import") as session:
        archive = session.archive
        keys = archive.unlock(center_passphrase(session.state))
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
    _exit_status(report)


def _exit_status(report: ImportReport) -> None:
    """The refusal's own error when all refusals agree, else bundle-invalid; then partial."""
    from center.core.importreport import PARTIAL, REFUSED

    if report.outbox_error is not None:
        raise report.outbox_error
    refused = report.with_status(REFUSED)
    if refused:
        refs = {o.error_ref for o in refused}
        cls = next((c for c in ALL_ERRORS if c.ref in refs), BundleError)
        if len(refs) == 1 and len(refused) == 1:
            raise cls(f"bundle {refused[0].bundle_id} was refused: {refused[0].reason}")
        raise BundleError(
            f"{len(refused)} bundle(s) refused ({', '.join(sorted(refs))}); the others were "
            "handled as the table shows"
        )
    partial = report.with_status(PARTIAL)
    if partial:
        raise BundlePartial(
            f"{len(partial)} bundle(s) imported partially: "
            f"{sum(o.quarantined for o in partial)} object(s) quarantined"
        )


def _iso(da: str) -> str:
    """A DICOM date (YYYYMMDD) as YYYY-MM-DD, like the expiry beside it."""
    return f"{da[:4]}-{da[4:6]}-{da[6:]}" if len(da) == 8 and da.isdigit() else da


def _as_dict(report: ImportReport, studies: list[StudyRow]) -> dict[str, Any]:
    push = report.push
    return {
        "drive": str(report.drive),
        "bundles": [o.to_dict() for o in report.outcomes],
        "studies": [s.__dict__ for s in studies],
        "confirmations": [c.__dict__ for c in report.confirmations],
        "receipts": [str(p) for p in report.receipts],
        "outbox": None
        if push is None
        else {
            "documents": push.documents,
            "files": [str(p) for p in push.files],
            "missing": push.missing,
            "no_recipients": push.no_recipients,
        },
        "outbox_error": None
        if report.outbox_error is None
        else {"error": report.outbox_error.ref, "message": report.outbox_error.message},
        "missing_bundles": [m.to_dict() for m in report.missing],
    }


def _render(report: ImportReport, studies: list[StudyRow]) -> None:
    from center.core.importreport import PARTIAL, REFUSED

    styles = {REFUSED: "red", PARTIAL: "yellow", "unsealed": "yellow"}
    console = Console()
    table = Table(
        Column("Bundle", no_wrap=True),
        "Facility",
        "Outcome",
        "Objects",
        "Stored",
        "Quarantined",
        "Studies",
        "Note",
        title=f"Import of {report.drive}",
    )
    for o in report.outcomes:
        style = styles.get(o.status, "")
        note = "; ".join(filter(None, [o.reason, *o.notes]))
        table.add_row(
            o.bundle_id,
            o.facility_id,
            f"[{style}]{o.status}[/]" if style else o.status,
            str(o.objects),
            str(o.stored),
            str(o.quarantined),
            str(o.studies),
            note,
        )
    console.print(table)
    if studies:
        st = Table(
            "Facility", "Accession", "Study date", "Modality", "Instances", "Bytes", "Expires",
            title="Studies stored",
        )  # fmt: skip
        for s in studies:
            st.add_row(
                s.facility_id,
                s.accession,
                _iso(s.study_date),
                s.modalities,
                str(s.instances),
                f"{s.bytes:,}",
                s.expiry,
            )
        console.print(st)
    for c in report.confirmations:
        console.print(f"Delivery confirmation {c.file}: {c.status} {c.reason}".rstrip())
    for path in report.receipts:
        console.print(f"Storage receipt: {path}")
    push = report.push
    if push is not None and push.documents:
        console.print(
            f"{len(push.documents)} document(s) for clinics written, encrypted, to "
            f"{report.drive / 'outbox'}"
        )
    if push is not None and push.no_recipients:
        console.print("[yellow]No active courier device: nothing written to the outbox.[/]")
    if push is not None and push.missing:
        console.print(f"[red]Queued documents whose files are missing: {push.missing}[/]")
    if report.missing:
        console.print(missing_line(report.missing))
