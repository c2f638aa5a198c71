"""Reading the header of a DICOM Part 10 file (PS3.10 section 7) without its pixel data.

The courier uses it to select studies and build the encrypted index; the center uses it to check
that a decrypted object is the instance the index promised. Malformed input never escapes as an
arbitrary exception: it becomes :class:`HeaderError` with a reason fit for a receipt's "skipped"
list (no patient data in the reason).

pydicom reads a header leniently: a file cut short inside its pixel data or inside an
undefined-length sequence parses without complaint. :func:`read_header` therefore also walks the
file's element structure to its end (PS3.5 section 7, tags and lengths only, values skipped) and
refuses a file whose last element or sequence is incomplete: such a file is a broken copy that
the clinic should export again, and it must not be archived as if it were whole.

Ordinary files are read by the fast path of :mod:`common.dicomfast` (one pass, no pydicom data
set), which gives exactly what this module's pydicom path gives or declines; declined files,
and every refusal, go through pydicom.

pydicom (and the fast path, which uses its dictionary) is imported when the first file is
read, not with this module: a re-scan that finds every header already kept in the journal, and
every command that only names these types, would otherwise pay its 50 ms import for nothing.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from common.dicomwalk import StructureError, Truncated, walk_to_end

if TYPE_CHECKING:
    import pydicom

# pydicom reports malformed files through many exception types; these are the ones a file's
# content (not a bug of ours) can provoke, besides pydicom's own InvalidDicomError and
# BytesLengthException (:func:`_malformed`). The list is explicit on purpose (STYLE.md point 7).
_MALFORMED = (
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
    zlib.error,
)


@functools.cache
def _malformed() -> tuple[type[BaseException], ...]:
    from pydicom.errors import BytesLengthException, InvalidDicomError

    # BytesLengthException: a value cut to a length its VR cannot have (file cut short)
    return (InvalidDicomError, BytesLengthException, *_MALFORMED)


MEDIA_DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"  # PS3.10 section 8: the DICOMDIR
DEFLATED_TRANSFER_SYNTAX = "1.2.840.10008.1.2.1.99"
# Deflate is used for small non-image objects (reports); a bigger stream is refused rather
# than inflated into the laptop's memory.
MAX_INFLATED = 256 << 20


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

    @classmethod
    def from_values(cls, values: Iterable[str]) -> InstanceHeader:
        """The header of *values*, in field order, made without the frozen ``__init__``'s
        eighteen ``object.__setattr__`` calls (a re-scan makes one per selected file: 0.9
        instead of 1.5 us)."""
        header = object.__new__(cls)
        header.__dict__.update(zip(_FIELD_NAMES, values, strict=True))
        return header


_FIELD_NAMES = tuple(InstanceHeader.__dataclass_fields__)


# DICOM keyword of each InstanceHeader field read from the data set.
HEADER_KEYWORDS = {
    "sop_instance_uid": "SOPInstanceUID",
    "sop_class_uid": "SOPClassUID",
    "study_instance_uid": "StudyInstanceUID",
    "series_instance_uid": "SeriesInstanceUID",
    "patient_id": "PatientID",
    "patient_name": "PatientName",
    "birth_date": "PatientBirthDate",
    "sex": "PatientSex",
    "accession": "AccessionNumber",
    "study_id": "StudyID",
    "study_date": "StudyDate",
    "study_time": "StudyTime",
    "study_description": "StudyDescription",
    "series_description": "SeriesDescription",
    "modality": "Modality",
    "body_part": "BodyPartExamined",
    "institution": "InstitutionName",
}

_KEYWORD = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_TAG = re.compile(r"^\(\s*([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4})\s*\)$")
_PRIVATE = re.compile(r"^\(\s*([0-9A-Fa-f]{4})\s*,\s*([^,()]+?)\s*,\s*([0-9A-Fa-f]{2})\s*\)$")


@dataclass(frozen=True)
class TagRef:
    """A data element named by keyword, by ``(gggg,eeee)``, or privately by creator.

    The private form ``(gggg,CREATOR,ee)`` names element ``ee`` of the block that private
    creator ``CREATOR`` reserved in odd group ``gggg`` (PS3.5 section 7.8.1), wherever in the
    group that block was placed; ``(gggg,eeee)`` names a fixed element number.
    """

    keyword: str = ""
    group: int = 0
    element: int = 0
    creator: str = ""

    @classmethod
    def parse(cls, text: str) -> TagRef:
        """Parse a keyword, ``(gggg,eeee)`` or ``(gggg,CREATOR,ee)``; ValueError if invalid."""
        text = text.strip()
        if match := _TAG.match(text):
            group, element = int(match[1], 16), int(match[2], 16)
            if group == 0x0002 or group == 0xFFFE:
                raise ValueError(f"{text} is a file-meta or delimiter tag, not a data element")
            return cls(group=group, element=element)
        if match := _PRIVATE.match(text):
            group = int(match[1], 16)
            if group % 2 == 0:
                raise ValueError(f"{text}: a private creator needs an odd group number")
            return cls(group=group, element=int(match[3], 16), creator=match[2])
        if _KEYWORD.match(text) and _is_keyword(text):
            return cls(keyword=text)
        raise ValueError(
            f"{text!r} is neither a DICOM keyword, nor (gggg,eeee), nor (gggg,CREATOR,ee)"
        )

    @property
    def key(self) -> str:
        """The canonical text of the reference (also the key of its value in a lookup)."""
        if self.keyword:
            return self.keyword
        if self.creator:
            return f"({self.group:04X},{self.creator},{self.element:02X})"
        return f"({self.group:04X},{self.element:04X})"

    @property
    def private(self) -> bool:
        return bool(self.creator) or (not self.keyword and self.group % 2 == 1)

    def value_in(self, ds: pydicom.Dataset) -> str:
        """The element's value as text ('' when absent)."""
        from pydicom.tag import Tag

        if self.keyword:
            return _as_text(ds.get(self.keyword))
        if self.creator:
            try:
                block = ds.private_block(self.group, self.creator)
            except KeyError:
                return ""
            tag = block.get_tag(self.element)
        else:
            tag = Tag(self.group, self.element)
        element = ds.get(tag)
        return "" if element is None else _as_text(element.value)


def _is_keyword(text: str) -> bool:
    """True for a keyword of the DICOM dictionary (the header's own keywords are known ones:
    a rule naming one, as the default rule does, needs no pydicom)."""
    if text in _KNOWN_KEYWORDS:
        return True
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(text) is not None


def _as_text(value: object) -> str:
    import pydicom

    if value is None:
        return ""
    if isinstance(value, bytes):  # an element of unknown VR (UN): its raw bytes
        return value.decode("latin-1").strip("\x00 ")
    if isinstance(value, pydicom.multival.MultiValue | list):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def read_header(source: Path | BinaryIO | bytes) -> InstanceHeader:
    """Parse the header of one Part 10 file; raise :class:`HeaderError` if it is not usable."""
    return read_header_values(source, ())[0]


_KNOWN_KEYWORDS = frozenset(HEADER_KEYWORDS.values())
_REQUIRED = ("sop_instance_uid", "sop_class_uid", "study_instance_uid")


def read_header_values(
    source: Path | BinaryIO | bytes, extra: Sequence[TagRef]
) -> tuple[InstanceHeader, dict[str, str]]:
    """The header, the values of the *extra* elements (by :attr:`TagRef.key`), structure checked.

    *source* is a file, an open binary stream, or a whole file's bytes. Raises
    :class:`HeaderError` for anything that is not a whole, usable DICOM instance.
    """
    if isinstance(source, Path | bytes):
        fast = _read_fast(source, extra)
        if fast is not None:
            return fast
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    return read_header_values_pydicom(source, extra)


def _read_fast(
    source: Path | bytes, extra: Sequence[TagRef]
) -> tuple[InstanceHeader, dict[str, str]] | None:
    """The fast path's answer, or None when it declines (see :mod:`common.dicomfast`)."""
    from common import dicomfast

    header_tags = _header_tags()
    if header_tags is None or any(not ref.keyword for ref in extra):
        return None
    extra_tags = dicomfast.wanted_tags([ref.keyword for ref in extra])
    if extra_tags is None:
        return None
    tags = {**header_tags, **extra_tags}
    values = dicomfast.read_fast(source, set(tags.values()))
    if values is None:
        return None
    fields = {name: values[tags[keyword]] for name, keyword in HEADER_KEYWORDS.items()}
    header = InstanceHeader(transfer_syntax_uid=values.get(dicomfast.TRANSFER_SYNTAX, ""), **fields)
    if not all(getattr(header, name) for name in _REQUIRED):
        return None  # pydicom's path names what is missing
    return header, {ref.key: values[tags[ref.keyword]] for ref in extra}


@functools.cache
def _header_tags() -> dict[str, int] | None:
    """The fast path's tags of the header's elements (None if it cannot read them all)."""
    from common import dicomfast

    return dicomfast.wanted_tags(list(HEADER_KEYWORDS.values()))


def read_header_values_pydicom(
    source: Path | BinaryIO, extra: Sequence[TagRef]
) -> tuple[InstanceHeader, dict[str, str]]:
    """:func:`read_header_values` through pydicom only (every file; the reference for the fast
    path, and the source of every refusal's reason)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's warnings name no patient, but are noise
            if isinstance(source, Path):
                with source.open("rb") as fh:
                    header, values, syntax = _parse(fh, extra)
                    _check_complete(fh, syntax)
            else:
                header, values, syntax = _parse(source, extra)
                _check_complete(source, syntax)
    except HeaderError:
        raise
    except OSError as exc:
        raise HeaderError(f"unreadable ({exc.strerror or type(exc).__name__})") from exc
    except _malformed() as exc:
        raise HeaderError(_refusal(exc)) from exc
    return header, values


def _refusal(exc: BaseException) -> str:
    from pydicom.errors import InvalidDicomError

    if isinstance(exc, InvalidDicomError):
        return "not a DICOM Part 10 file (no DICM preamble)"
    return f"malformed DICOM header ({type(exc).__name__})"


def _parse(fh: BinaryIO, extra: Sequence[TagRef]) -> tuple[InstanceHeader, dict[str, str], str]:
    import pydicom

    ds = pydicom.dcmread(fh, stop_before_pixels=True)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    media_class = str(ds.file_meta.get("MediaStorageSOPClassUID", ""))
    if media_class == MEDIA_DIRECTORY_SOP_CLASS or "DirectoryRecordSequence" in ds:
        raise HeaderError("a DICOMDIR (media directory), not an image: nothing to archive")
    fields = {name: _as_text(ds.get(keyword)) for name, keyword in HEADER_KEYWORDS.items()}
    header = InstanceHeader(transfer_syntax_uid=syntax, **fields)
    missing = [
        keyword
        for name, keyword in HEADER_KEYWORDS.items()
        if name in ("sop_instance_uid", "sop_class_uid", "study_instance_uid")
        and not getattr(header, name)
    ]
    if missing:
        raise HeaderError("not an archivable instance: no " + ", ".join(missing))
    return header, {ref.key: ref.value_in(ds) for ref in extra}, syntax


def _check_complete(fh: BinaryIO, syntax: str) -> None:
    """Walk the data set after the file meta information to its end (raise if broken)."""
    try:
        fh.seek(0)
        start = _dataset_offset(fh)
        if syntax == DEFLATED_TRANSFER_SYNTAX:
            fh.seek(start)
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            data = inflater.decompress(fh.read(), MAX_INFLATED)
            if inflater.unconsumed_tail:
                raise StructureError("the deflated data set inflates beyond 256 MiB")
            if not inflater.eof:
                raise Truncated("the deflated data set ends before its end marker")
            walk_to_end(data, 0, len(data), little=True, explicit=True)
        else:
            fh.seek(0, 2)
            walk_to_end(
                fh,
                start,
                fh.tell(),
                little=syntax != "1.2.840.10008.1.2.2",
                explicit=syntax != "1.2.840.10008.1.2",
            )
    except Truncated as exc:
        raise HeaderError(f"truncated: {exc}") from exc
    except StructureError as exc:
        raise HeaderError(f"malformed DICOM structure: {exc}") from exc


def _dataset_offset(fh: BinaryIO) -> int:
    """Offset of the data set: past the preamble, "DICM" and the group 0002 elements."""
    head = fh.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        raise HeaderError("not a DICOM Part 10 file (no DICM preamble)")
    offset = 132
    while True:
        fh.seek(offset)
        raw = fh.read(8)
        if len(raw) < 8 or struct.unpack("<H", raw[:2])[0] != 0x0002:
            return offset
        if raw[4:6] in (b"OB", b"OW", b"OF", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OD", b"OL"):
            more = fh.read(4)
            if len(more) < 4:
                raise Truncated("the file ends inside the file meta information")
            offset += 12 + struct.unpack("<I", more)[0]
        else:
            offset += 8 + struct.unpack("<H", raw[6:8])[0]
