"""The fast header path answers exactly as the pydicom path does, or declines."""

from __future__ import annotations

import io
import struct
import tempfile
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_files
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from common import dicomfast
from common.dicomhdr import (
    HEADER_KEYWORDS,
    HeaderError,
    InstanceHeader,
    TagRef,
    read_header_values,
    read_header_values_pydicom,
)
from examples.clinic_terminal import TerminalSpec, generate_terminal

EXTRA = (TagRef(keyword="AccessionNumber"), TagRef(keyword="StudyID"))
Outcome = tuple[InstanceHeader, dict[str, str]] | str


def _outcome(reader, path: Path) -> Outcome:  # type: ignore[no-untyped-def]
    try:
        result: Outcome = reader(path, EXTRA)
    except HeaderError as exc:
        result = f"refused: {exc.reason}"
    return result


def _fast_answers(path: Path) -> bool:
    tags = dicomfast.wanted_tags([*HEADER_KEYWORDS.values(), "StudyID"])
    assert tags is not None
    return dicomfast.read_fast(path, set(tags.values())) is not None


PYDICOM_FILES = sorted(
    Path(p) for p in get_testdata_files() if not p.endswith(".py") and Path(p).is_file()
)


@pytest.mark.parametrize("path", PYDICOM_FILES, ids=[p.name for p in PYDICOM_FILES])
def test_pydicom_test_files_read_the_same_both_ways(path: Path) -> None:
    """Every file of pydicom's own test set gives the same header (or refusal) both ways."""
    assert _outcome(read_header_values, path) == _outcome(read_header_values_pydicom, path)


@pytest.mark.parametrize("path", PYDICOM_FILES, ids=[p.name for p in PYDICOM_FILES])
def test_a_files_bytes_read_as_the_file_does(path: Path) -> None:
    """Reading a whole file's bytes (the center checks decrypted objects in memory) gives what
    reading the file gives."""
    data = path.read_bytes()
    assert _outcome(read_header_values, data) == _outcome(read_header_values_pydicom, path)


def test_the_fast_path_answers_for_ordinary_files() -> None:
    """The fast path is really taken for plain files (else the differential tests are empty)."""
    answered = [p.name for p in PYDICOM_FILES if _fast_answers(p)]
    assert "CT_small.dcm" in answered and len(answered) >= 40


def test_generated_terminal_reads_the_same_both_ways(tmp_path: Path) -> None:
    """The example terminal (Latin-1, UTF-8 and Japanese names, every modality) reads the same
    both ways, and the fast path answers for every file."""
    generate_terminal(tmp_path, TerminalSpec(seed=5, studies=12, pixel_bytes=256))
    files = sorted(tmp_path.rglob("*.dcm"))
    assert files
    for path in files:
        assert _fast_answers(path), path.name
        assert _outcome(read_header_values, path) == _outcome(read_header_values_pydicom, path)


_CHARSETS = ["", "ISO_IR 100", "ISO_IR 192", "ISO_IR 144", "ISO 2022 IR 87", "ISO_IR 6"]
_ALPHABET = st.sampled_from(
    ["A", "z", "0", ".", " ", "^", "=", "\\", "\0", "\t", "é", "Ø", "Ж", "山", "\x1b", "-"]
)
_TEXT_FIELDS = ["PatientName", "PatientID", "AccessionNumber", "StudyDescription", "Modality"]


def _write(path: Path, values: dict[str, bytes], charset: str, implicit: bool) -> None:
    """A Part 10 file written byte by byte, so element values hold exactly *values*."""
    elements = {
        "SOPClassUID": b"1.2.840.10008.5.1.4.1.1.7\0",
        "SOPInstanceUID": b"1.2.3.4.5\0",
        "StudyInstanceUID": b"1.2.3.4\0",
        "SeriesInstanceUID": b"1.2.3.4.6\0",
        **values,
    }
    if charset:
        elements["SpecificCharacterSet"] = charset.encode() + b" " * (len(charset) % 2)
    body = io.BytesIO()
    for keyword in sorted(elements, key=pydicom.datadict.tag_for_keyword):
        tag = pydicom.datadict.tag_for_keyword(keyword)
        raw = elements[keyword]
        body.write(struct.pack("<HH", tag >> 16, tag & 0xFFFF))
        if implicit:
            body.write(struct.pack("<I", len(raw)))
        else:
            vr = pydicom.datadict.dictionary_VR(tag)
            body.write(vr.encode() + struct.pack("<H", len(raw)))
        body.write(raw)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    head = DicomBytesIO()
    write_file_meta_info(head, meta, enforce_standard=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + head.getvalue() + body.getvalue())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.dictionaries(
        st.sampled_from(_TEXT_FIELDS), st.text(_ALPHABET, max_size=12), max_size=5
    ),
    junk=st.dictionaries(st.sampled_from(_TEXT_FIELDS), st.binary(max_size=8), max_size=2),
    charset=st.sampled_from(_CHARSETS),
    implicit=st.booleans(),
)
def test_odd_values_read_the_same_both_ways(
    texts: dict[str, str], junk: dict[str, bytes], charset: str, implicit: bool
) -> None:
    """Padding, backslashes, '=' groups, NULs, escapes, accents and undecodable bytes in any
    character set give the same values both ways (the fast path declines what it cannot do)."""
    encoding = {"ISO_IR 192": "utf-8", "ISO_IR 144": "iso8859_5"}.get(charset, "latin-1")
    values = {k: v.encode(encoding, errors="replace") for k, v in texts.items()}
    values.update(junk)
    for keyword, raw in values.items():  # even lengths, as a writer pads them
        values[keyword] = raw + b" " if len(raw) % 2 else raw
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.dcm"
        _write(path, values, charset, implicit)
        assert _outcome(read_header_values, path) == _outcome(read_header_values_pydicom, path)


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=4000))
def test_files_cut_anywhere_read_the_same_both_ways(cut: int) -> None:
    """A file cut at any point gives the same refusal (or header) both ways."""
    source = Path(str(pydicom.data.get_testdata_file("CT_small.dcm")))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cut.dcm"
        data = source.read_bytes()
        path.write_bytes(data[: min(cut, len(data))])
        assert _outcome(read_header_values, path) == _outcome(read_header_values_pydicom, path)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=600))
def test_random_bytes_read_the_same_both_ways(data: bytes) -> None:
    """Arbitrary bytes after a DICM preamble are refused (or read) alike both ways."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "noise.dcm"
        path.write_bytes(b"\0" * 128 + b"DICM" + data)
        assert _outcome(read_header_values, path) == _outcome(read_header_values_pydicom, path)
