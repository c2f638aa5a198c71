"""`center export`: output the studies a query finds, to a folder, encrypted, or to a PACS."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from center.cli import options as opt
from center.cli.session import operator_session
from common.boundary import error_boundary

if TYPE_CHECKING:
    from center.core.export import ExportReport


@error_boundary
def export(
    ctx: typer.Context,
    purpose: opt.Purpose,
    to: opt.ExportFolder = None,
    encrypt_to: opt.EncryptTo = None,
    to_pacs: opt.ToPacs = None,
    facility: opt.Facility = None,
    patient_id: opt.PatientId = None,
    name: opt.PatientName = None,
    accession: opt.Accession = None,
    study: opt.StudyUid = None,
    study_date: opt.StudyDate = None,
    modality: opt.Modality = None,
    expiring_before: opt.ExpiringBefore = None,
    held: opt.Held = None,
    as_json: opt.JsonOutput = False,
) -> None:
    """Export the studies matching the criteria (the QUERY: same options as `center search`).

    --to DIR writes a DICOM file-set with DICOMDIR, index.html and SHA256SUMS (DIR must be new
    or empty); add --encrypt-to age1... to write it as one age-encrypted .tar.age file in DIR
    instead. --to-pacs AET@host:port sends it with C-STORE. Every object's hash is checked
    first; the export is recorded in the audit log with your name and the purpose.
    """
    # imported when the command runs: `center` imports every command module to start one
    from center.core.export import destination, export_studies
    from common.richprogress import RichProgress

    query = opt.study_query(
        facility=facility,
        patient_id=patient_id,
        name=name,
        accession=accession,
        study=study,
        study_date=study_date,
        modality=modality,
        expiring_before=expiring_before,
        held=held,
    )
    target = destination(to=to, encrypt_to=encrypt_to, to_pacs=to_pacs)
    with operator_session(ctx, "export") as session, RichProgress(enabled=not as_json) as bar:
        report = export_studies(
            session.archive,
            query,
            to=target,
            purpose=purpose,
            operator=session.operator,
            now=session.state.env.now(),
            progress=bar,
        )
    render_export(report, as_json)


def render_export(report: ExportReport, as_json: bool) -> None:
    """Print an export's outcome (shared with `center request fulfil`)."""
    if as_json:
        doc = asdict(report) | {"output": str(report.output) if report.output else None}
        typer.echo(json.dumps(doc, indent=2))
        return
    console = Console()
    console.print(
        f"Exported {len(report.studies)} studies ({report.instances} instances, "
        f"{report.bytes:,} bytes) to {report.destination}."
    )
    for study in report.studies:
        console.print(
            f"  {study.facility_id}  {study.accession or '-'}  {_day(study.study_date)}  "
            f"{study.modalities}  {study.instances} instances"
        )
    for item in report.skipped:
        console.print(f"  [yellow]not exported[/yellow]: {item['item']}: {item['reason']}")
    if report.output:
        console.print(f"Output: {report.output}")
    console.print(f"Recorded in the audit log as export {report.export_id}.")


def _day(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:]}" if len(value) == 8 and value.isdigit() else value
