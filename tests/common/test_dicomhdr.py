"""Header reading: whole instances are read, anything else is refused with a reason."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from common.dicomhdr import HeaderError, InstanceHeader, TagRef, read_header, read_header_values
from common.dicomwalk import StructureError, walk_to_end


def _file(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None
    return Path(str(path))


def test_whole_file_is_read() -> None:
    """A plain file gives its identifiers and accompanying information."""
    header = read_header(_file("CT_small.dcm"))
    assert header.modality == "CT" and header.sop_instance_uid and header.study_instance_uid


@pytest.mark.parametrize("name", ["MR_truncated.dcm", "rtplan_truncated.dcm"])
def test_files_cut_short_are_refused_as_truncated(name: str) -> None:
    """pydicom reads these leniently; the structure walk refuses them as truncated."""
    pydicom.dcmread(_file(name))  # the lenient parser does not complain
    with pytest.raises(HeaderError, match="truncated"):
        read_header(_file(name))


def test_every_prefix_of_a_file_is_refused() -> None:
    """A file cut anywhere inside its data set is never taken for a whole instance."""
    data = _file("MR_small.dcm").read_bytes()
    for cut in range(200, len(data), 97):
        with pytest.raises(HeaderError):
            read_header(io.BytesIO(data[:cut]))


def test_dicomdir_is_refused_with_its_own_reason() -> None:
    """A media directory is named as such, not as a broken image."""
    with pytest.raises(HeaderError, match="DICOMDIR"):
        read_header(_file("DICOMDIR"))


def test_explicit_label_on_implicit_data_is_read() -> None:
    """A data set labelled explicit VR but written implicit is read, as pydicom does."""
    assert read_header(_file("SC_rgb_jpeg.dcm")).sop_instance_uid


def test_deflated_file_is_read_and_its_truncation_caught() -> None:
    """Deflated data sets are inflated for the walk; a cut stream is refused."""
    path = _file("image_dfl.dcm")
    assert read_header(path).sop_instance_uid
    with pytest.raises(HeaderError):
        read_header(io.BytesIO(path.read_bytes()[:-40]))


def test_non_dicom_is_refused() -> None:
    """A file without the DICM preamble is refused with that reason."""
    with pytest.raises(HeaderError, match="DICM"):
        read_header(io.BytesIO(b"hello" * 100))


def test_extra_elements_by_number_and_by_private_creator() -> None:
    """Extra values are read by keyword, by tag number and by private creator."""
    ds = pydicom.dcmread(_file("CT_small.dcm"))
    block = ds.private_block(0x0013, "SYNTHETIC CLINIC", create=True)
    block.add_new(0x01, "LO", "ARCHIVE")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    refs = [
        TagRef.parse("(0013,SYNTHETIC CLINIC,01)"),
        TagRef.parse("(0008,0060)"),
        TagRef.parse("Modality"),
        TagRef.parse("(0013,OTHER,01)"),
    ]
    _header, values = read_header_values(buffer, refs)
    assert [values[r.key] for r in refs] == ["ARCHIVE", "CT", "CT", ""]


@pytest.mark.parametrize("text", ["", "Accession", "(12,34)", "(0011,,10)", "(0011,X,100)"])
def test_bad_tag_references_are_refused(text: str) -> None:
    """Malformed element references are refused."""
    with pytest.raises(ValueError):
        TagRef.parse(text)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), explicit=st.booleans(), little=st.booleans())
def test_the_walk_only_ever_raises_structure_errors(
    data: bytes, explicit: bool, little: bool
) -> None:
    """Arbitrary bytes end the walk normally or with StructureError: never another error."""
    with contextlib.suppress(StructureError):
        walk_to_end(data, 0, len(data), little=little, explicit=explicit)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=600))
def test_header_reading_only_ever_raises_header_errors(data: bytes) -> None:
    """Random bytes after a DICM preamble give a header or a HeaderError, nothing else."""
    blob = b"\0" * 128 + b"DICM" + data
    try:
        read_header(io.BytesIO(blob))
    except HeaderError as exc:
        assert exc.reason


def test_a_header_made_from_values_is_the_header_of_those_values() -> None:
    header = read_header(Path(get_testdata_file("CT_small.dcm")))
    values = list(vars(header).values())
    made = InstanceHeader.from_values(values)
    assert made == InstanceHeader(*values) == header and hash(made) == hash(header)
    with pytest.raises(ValueError):
        InstanceHeader.from_values(values[:-1])
