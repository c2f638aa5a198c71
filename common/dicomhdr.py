"""Reading the header of a DICOM Part 10 file (PS3.10 section 7) without its pixel data.

The courier uses it to select studies and build the encrypted index; the center uses it to check
that a decrypted object is the instance the index promised. Malformed input never escapes as an
arbitrary exception: it becomes :class:`HeaderError` with a reason fit for a receipt's "skipped"
list (no patient data in the reason).
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.errors import InvalidDicomError

# pydicom reports malformed files through many exception types; these are the ones a file's
# content (not a bug of ours) can provoke. The list is explicit on purpose (STYLE.md point 7).
_MALFORMED = (
    InvalidDicomError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    struct.error,
    EOFError,
    OverflowError,
    RecursionError,
    NotImplementedError,
    UnicodeError,
    MemoryError,
)


class HeaderError(Exception):
    """The file is not a usable DICOM instance; ``reason`` says why, without patient data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InstanceHeader:
    """The identifiers and accompanying information of one instance (PS3.3 C.7, C.12)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    accession: str
    study_id: str
    study_date: str
    study_time: str
    study_description: str
    series_description: str
    modality: str
    body_part: str
    institution: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceHeader:
        return cls(**{name: str(data.get(name, "")) for name in cls.__dataclass_fields__})


def _text(ds: pydicom.Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def read_header(source: Path | BinaryIO) -> InstanceHeader:
    """Parse the header of one Part 10 file; raise :class:`HeaderError` if it is not usable."""
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True)
        header = InstanceHeader(
            sop_instance_uid=_text(ds, "SOPInstanceUID"),
            sop_class_uid=_text(ds, "SOPClassUID"),
            study_instance_uid=_text(ds, "StudyInstanceUID"),
            series_instance_uid=_text(ds, "SeriesInstanceUID"),
            transfer_syntax_uid=str(ds.file_meta.get("TransferSyntaxUID", "")),
            patient_id=_text(ds, "PatientID"),
            patient_name=_text(ds, "PatientName"),
            birth_date=_text(ds, "PatientBirthDate"),
            sex=_text(ds, "PatientSex"),
            accession=_text(ds, "AccessionNumber"),
            study_id=_text(ds, "StudyID"),
            study_date=_text(ds, "StudyDate"),
            study_time=_text(ds, "StudyTime"),
            study_description=_text(ds, "StudyDescription"),
            series_description=_text(ds, "SeriesDescription"),
            modality=_text(ds, "Modality"),
            body_part=_text(ds, "BodyPartExamined"),
            institution=_text(ds, "InstitutionName"),
        )
    except InvalidDicomError as exc:
        raise HeaderError("not a DICOM Part 10 file (no DICM preamble)") from exc
    except OSError as exc:
        raise HeaderError(f"unreadable ({exc.strerror or type(exc).__name__})") from exc
    except _MALFORMED as exc:
        raise HeaderError(f"malformed DICOM header ({type(exc).__name__})") from exc
    missing = [
        name
        for name in ("sop_instance_uid", "sop_class_uid", "study_instance_uid")
        if not getattr(header, name)
    ]
    if missing:
        raise HeaderError("missing " + ", ".join(missing))
    return header
