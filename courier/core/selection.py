"""Which instances a clinic flagged for archiving (DESIGN.md s3). Pure, no I/O.

The seed marks data sets to archive with a leading "A" in their identification ("B": keep at
the clinic). Default rule: the AccessionNumber starts with ``A``. A facility may name another
header field and prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.dicomhdr import InstanceHeader
from common.errors import ConfigError

# DICOM keyword -> InstanceHeader field that carries it.
SELECTABLE_FIELDS = {
    "AccessionNumber": "accession",
    "StudyID": "study_id",
    "StudyDescription": "study_description",
    "InstitutionName": "institution",
}


@dataclass(frozen=True)
class SelectionRule:
    keyword: str = "AccessionNumber"
    prefix: str = "A"

    def __post_init__(self) -> None:
        if self.keyword not in SELECTABLE_FIELDS:
            known = ", ".join(sorted(SELECTABLE_FIELDS))
            raise ConfigError(
                f"selection keyword {self.keyword!r} is not supported", hint=f"Use one of {known}."
            )
        if not self.prefix:
            raise ConfigError("the selection prefix is empty", hint="Give a prefix such as 'A'.")

    def describe(self) -> str:
        return f"{self.keyword} starts with {self.prefix!r}"

    def selects(self, header: InstanceHeader) -> bool:
        """True when the instance is flagged for archiving."""
        value: str = getattr(header, SELECTABLE_FIELDS[self.keyword])
        return value.strip().upper().startswith(self.prefix.upper())
