"""Options shared by courier commands, declared once (STYLE.md point 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonOutput = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DrivePath = Annotated[
    Path,
    typer.Option(
        "--drive",
        help="The courier drive's mount point (or any folder standing in).",
        file_okay=False,
    ),
]
FacilityId = Annotated[str, typer.Option("--facility", help="The clinic's facility id.")]
