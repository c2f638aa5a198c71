"""`center search`: find studies by their accompanying information."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from center.cli import options as opt
from center.cli.session import operator_session
from center.core.search import MAX_LIMIT
from common.boundary import error_boundary

if TYPE_CHECKING:
    from center.core.search import SearchResult


class SortKey(StrEnum):
    """The orders `center search` offers (center.core.search.SORT_KEYS)."""

    date = "date"
    expiry = "expiry"
    name = "name"
    patient_id = "patient-id"
    accession = "accession"
    facility = "facility"
    received = "received"


@error_boundary
def search_studies(
    ctx: typer.Context,
    facility: opt.Facility = None,
    patient_id: opt.PatientId = None,
    name: opt.PatientName = None,
    accession: opt.Accession = None,
    study: opt.StudyUid = None,
    study_date: opt.StudyDate = None,
    modality: opt.Modality = None,
    expiring_before: opt.ExpiringBefore = None,
    held: opt.Held = None,
    sort: Annotated[SortKey, typer.Option("--sort", help="Order of the rows.")] = SortKey.date,
    descending: Annotated[
        bool, typer.Option("--desc", help="Sort in descending order (newest first).")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", help=f"Show at most this many studies (1..{MAX_LIMIT}).")
    ] = 100,
    as_json: opt.JsonOutput = False,
) -> None:
    """Find studies by facility, patient, accession, date, modality or expiry; one row each.

    Every search is recorded in the audit log with your name, the criteria and the studies
    shown.
    """
    # imported when the command runs: `center` imports every command module to start one
    from center.core.search import search

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
    with operator_session(ctx, "search") as session:
        result = search(
            session.archive.conn,
            query,
            operator=session.operator,
            now=session.state.env.now(),
            sort=sort.value,
            descending=descending,
            limit=limit,
        )
    if as_json:
        typer.echo(json.dumps(asdict(result) | {"truncated": result.truncated}, indent=2))
    else:
        _render(result)


def _render(result: SearchResult) -> None:
    console = Console()
    table = Table(
        "Facility",
        "Patient ID",
        "Name",
        "Date",
        "Modality",
        "Accession",
        "Instances",
        "Size",
        "Expiry",
        "Hold",
        title=f"{result.total} {'study' if result.total == 1 else 'studies'} found",
    )
    for h in result.hits:
        table.add_row(
            h.facility_id,
            h.patient_id,
            h.patient_name,
            h.study_date,
            h.modalities,
            h.accession,
            str(h.instances),
            _size(h.bytes),
            h.expiry,
            "held" if h.held else "",
        )
    console.print(table)
    if result.truncated:
        console.print(
            f"Showing {len(result.hits)} of {result.total}: narrow the criteria or raise --limit."
        )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
