"""Options shared by center commands, declared once (STYLE.md point 4).

The study criteria are the same for `center search` and `center export` (its QUERY), so a
search can be checked first and then exported with the very same options.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from center.core.search import StudyQuery

JsonOutput = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

Facility = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional here
    typer.Option("--facility", help="Only this clinic's studies (facility id)."),
]
PatientId = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--patient-id", help="Patient ID, exact (or with * and ? wildcards)."),
]
PatientName = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--name",
        help="Patient name, any case, accents optional: a prefix ('muller'), or a pattern "
        "with * and ? and ^ between components ('müller^j*').",
    ),
]
Accession = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--accession", help="Accession number, exact (or with * and ? wildcards)."),
]
StudyUid = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--study", help="Study Instance UID (repeat for several)."),
]
StudyDate = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--date",
        help="Study date or range: 2024-03-01, 2024-01-01..2024-06-30, 2024-01-01.. or "
        "..2023-12-31 (DICOM's 20240101-20240630 works too).",
    ),
]
Modality = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--modality", help="Studies with a series of this modality (CT, MR, US...)."),
]
ExpiringBefore = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--expiring-before", help="Studies whose expiry date is before this date."),
]
Held = Annotated[
    Optional[bool],  # noqa: UP045
    typer.Option(
        "--held/--not-held", help="Only studies under legal hold, or only those not held."
    ),
]

Purpose = Annotated[
    str,
    typer.Option("--purpose", help="Why the images leave the archive (kept in the audit log)."),
]
ExportFolder = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--to", help="Folder for the file-set (new or empty), or for the .tar.age file."),
]
EncryptTo = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--encrypt-to",
        help="Write the export as one file age-encrypted to this recipient (age1...).",
    ),
]
ToPacs = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--to-pacs", help="Send by C-STORE to AET@host:port instead of a folder."),
]


def study_query(
    *,
    facility: str | None,
    patient_id: str | None,
    name: str | None,
    accession: str | None,
    study: list[str] | None,
    study_date: str | None,
    modality: str | None,
    expiring_before: str | None,
    held: bool | None,
) -> StudyQuery:
    """The criteria from the command line, dates parsed (QueryInvalid names a bad one)."""
    # imported when the command runs: every command module imports these options
    from center.core.search import StudyQuery, parse_date_range, parse_day

    date_from, date_to = parse_date_range(study_date) if study_date else (None, None)
    return StudyQuery(
        facility=facility,
        patient_id=patient_id,
        patient_name=name,
        accession=accession,
        study_uids=tuple(study or ()),
        date_from=date_from,
        date_to=date_to,
        modality=modality,
        expiring_before=parse_day(expiring_before, "--expiring-before")
        if expiring_before
        else None,
        held=held,
    )
