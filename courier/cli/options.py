"""Options shared by courier commands, declared once (STYLE.md point 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

JsonOutput = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DriveOption = Annotated[
    str,
    typer.Option(
        "--drive",
        envvar="COURIER_DRIVE",
        help="The courier drive's mount point (or any folder standing in), or 'auto' to use "
        "the one courier drive plugged in.",
    ),
]
FacilityArg = Annotated[str, typer.Argument(help="The clinic's facility id (e.g. clinic-042).")]
SourceOption = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional
    typer.Option(
        "--source",
        help="The clinic terminal's DICOM folder, or dicom://AET@host:port for its PACS "
        "(overrides the facility's setting).",
    ),
]
RuleOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--rule",
        help="Selection rule: TAG:PREFIX (AccessionNumber:A, StudyID:ARC, (0011,1010):A, "
        "(0011,CREATOR,10):Y) or flag-file:PATH (overrides the facility's setting).",
    ),
]
ReceiptsOption = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--receipts",
        help="The clinic's folder for receipts (overrides the facility's setting).",
    ),
]
ThresholdOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--capacity-threshold",
        help="Warn when the terminal's free space falls below this: a percentage of its "
        "capacity (15%) or a size (20G). Default: the larger of 10% and the largest study.",
    ),
]
CallingAetOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--calling-aet", help="Our AE title towards the clinic's PACS (default COURIER)."),
]
