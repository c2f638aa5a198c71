"""The fast path of header reading: one pass over the element headers of an ordinary file.

:func:`common.dicomhdr.read_header_values` parses with pydicom and then walks the structure
to the end: about 0.5 ms a file, most of it pydicom building and converting elements the
courier never reads. Most files a clinic terminal holds are plain: a Part 10 file in little
endian (explicit or implicit VR, native or encapsulated pixel data) whose identifying elements
are short texts in a single-byte or UTF-8 character set. For those, :func:`read_fast` walks the
top-level elements once (PS3.5 section 7: tag, VR, length; values skipped, sequences and
encapsulated pixel data walked item by item by :func:`common.dicomwalk.skip_items`), keeps the
raw values of the wanted elements, and converts them as pydicom does.

It answers only when it is sure to give exactly what the pydicom path gives (a differential
test checks this on pydicom's own test files and on generated ones); anything else (another
transfer syntax, code extensions, a value with several values or undecodable bytes, a VR other
than the dictionary's, a broken or truncated structure, a DICOMDIR, a missing identifier)
returns None, and the caller takes the pydicom path, which also gives the reason for a refusal.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword

from common.dicomwalk import StructureError, skip_items

_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_ENCAPSULATED = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5")  # JPEG family, RLE: explicit LE
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
# The VRs of PS3.5 table 6.2-1; a file with another is left to pydicom.
_KNOWN_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN "
    b"UR US UT UV".split()
)
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
_FIRST_READ = 64 << 10
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # pydicom stops before these
_CHARSET = 0x00080005
_DIRECTORY_RECORDS = 0x00041220
_MEDIA_CLASS = 0x00020002
TRANSFER_SYNTAX = 0x00020010
# Character sets without code extensions, decoded by one Python codec (PS3.3 C.12.1.1.2).
_PLAIN_CHARSETS = frozenset(
    {
        "",
        "ISO_IR 6",
        "ISO_IR 100",
        "ISO_IR 101",
        "ISO_IR 109",
        "ISO_IR 110",
        "ISO_IR 126",
        "ISO_IR 127",
        "ISO_IR 138",
        "ISO_IR 144",
        "ISO_IR 148",
        "ISO_IR 166",
        "ISO_IR 192",
    }
)
_DEFAULT_ENCODING = python_encoding[""]
_STRING_VRS = frozenset({"UI", "CS", "DA", "TM"})  # decoded with the default encoding
_TEXT_VRS = frozenset({"SH", "LO"})  # decoded with the data set's character set
_SUPPORTED_VRS = _STRING_VRS | _TEXT_VRS | {"PN"}

_HH = struct.Struct("<HH")
_I = struct.Struct("<I")
_H = struct.Struct("<H")


class _Unsure(Exception):
    """This file is not one the fast path can read with certainty."""


def wanted_tags(keywords: Sequence[str]) -> dict[str, int] | None:
    """Keyword -> tag of each keyword; None when one is not a plain text element this path
    reads (UI, CS, DA, TM, SH, LO or PN in the data dictionary)."""
    tags = {}
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is None or dictionary_VR(tag) not in _SUPPORTED_VRS:
            return None
        tags[keyword] = int(tag)
    return tags


def read_fast(source: Path | bytes, wanted: set[int]) -> dict[int, str] | None:
    """The text of each *wanted* element ('' when absent) as pydicom gives it, or None when
    the file (or the bytes of one) is not an ordinary one (the caller then reads it with
    pydicom).

    The transfer syntax and media storage SOP class are returned under their tags too.
    """
    try:
        if isinstance(source, bytes):
            raw, meta = _scan(io.BytesIO(source), len(source), wanted)
        else:
            with source.open("rb", buffering=0) as fh:
                raw, meta = _scan(fh, os.fstat(fh.fileno()).st_size, wanted)
    except (_Unsure, StructureError, OSError):
        return None
    try:
        return _convert(raw, meta, {tag: str(dictionary_VR(tag)) for tag in wanted})
    except (_Unsure, UnicodeError):
        return None


def _scan(fh: BinaryIO, size: int, wanted: set[int]) -> tuple[dict[int, bytes], dict[int, str]]:
    window = _Window(fh, size)
    if window.get(128, 4) != b"DICM":
        raise _Unsure
    pos, meta = _file_meta(window)
    syntax = meta.get(TRANSFER_SYNTAX, "")
    if meta.get(_MEDIA_CLASS) == _MEDIA_DIRECTORY:
        raise _Unsure
    if syntax == _IMPLICIT_LE:
        explicit = False
    elif syntax == _EXPLICIT_LE or syntax.startswith(_ENCAPSULATED):
        explicit = True
    else:
        raise _Unsure
    if pos + 6 <= size:  # a data set labelled one way and written the other: pydicom's call
        vr = window.get(pos + 4, 2)
        if (vr.isalpha() and vr.isupper()) != explicit:
            raise _Unsure
    found = _top_level(fh, window, pos, size, explicit, wanted | {_CHARSET, _DIRECTORY_RECORDS})
    return found, meta


class _Window:
    """A read window over the file: most element headers sit in its first 64 KiB."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh, self.size = fh, size
        self.start = 0
        self.data = fh.read(min(size, _FIRST_READ))

    def get(self, pos: int, n: int) -> bytes:
        if pos + n > self.size:
            raise _Unsure
        offset = pos - self.start
        if offset < 0 or offset + n > len(self.data):
            self.fh.seek(pos)
            self.data = self.fh.read(max(n, min(_FIRST_READ, self.size - pos)))
            self.start, offset = pos, 0
            if len(self.data) < n:
                raise _Unsure
        return self.data[offset : offset + n]


def _file_meta(window: _Window) -> tuple[int, dict[int, str]]:
    """Walk the group 0002 elements (always explicit VR little endian, PS3.10 7.1)."""
    pos, meta = 132, dict[int, str]()
    while pos + 8 <= window.size:
        head = window.get(pos, 8)
        group, element = _HH.unpack_from(head)
        if group != 0x0002:
            return pos, meta
        vr = head[4:6]
        if vr not in _KNOWN_VRS:
            raise _Unsure
        if vr in _LONG_VRS:
            length, pos = _I.unpack(window.get(pos + 8, 4))[0], pos + 12
        else:
            length, pos = _H.unpack_from(head, 6)[0], pos + 8
        if length == _UNDEFINED:
            raise _Unsure
        tag = (group << 16) | element
        if tag in (_MEDIA_CLASS, TRANSFER_SYNTAX):
            if vr != b"UI" or tag in meta:
                raise _Unsure
            meta[tag] = _uid(window.get(pos, length))
        pos += length
    raise _Unsure


def _top_level(
    fh: BinaryIO, window: _Window, pos: int, size: int, explicit: bool, wanted: set[int]
) -> dict[int, bytes]:
    """Raw values of the *wanted* top-level elements; the whole structure walked to its end."""
    found: dict[int, bytes] = {}
    after_pixels = False
    while pos < size:
        head = window.get(pos, 8)
        group, element = _HH.unpack_from(head)
        if group == 0xFFFE:
            raise _Unsure
        if explicit:
            vr = head[4:6]
            if vr not in _KNOWN_VRS:
                raise _Unsure
            if vr in _LONG_VRS:
                length, value = _I.unpack(window.get(pos + 8, 4))[0], pos + 12
            else:
                length, value = _H.unpack_from(head, 6)[0], pos + 8
        else:
            vr = b""
            length, value = _I.unpack_from(head, 4)[0], pos + 8
        tag = (group << 16) | element
        if tag in wanted:
            if after_pixels or tag in found or length == _UNDEFINED:
                raise _Unsure
            if explicit and vr.decode() != dictionary_VR(tag):
                raise _Unsure
            found[tag] = window.get(value, length) if length else b""
        after_pixels = after_pixels or tag in _PIXEL_TAGS
        if length == _UNDEFINED:
            # Only encapsulated pixel data: pydicom parses an undefined-length sequence while
            # reading, and its verdict on odd items is its own.
            if tag != _PIXEL_DATA:
                raise _Unsure
            pos = skip_items(
                fh,
                value,
                size,
                little=True,
                explicit=explicit and vr != b"UN",
                owner=(group, element),
            )
        elif value + length > size:
            raise _Unsure
        else:
            pos = value + length
    if _DIRECTORY_RECORDS in found:
        raise _Unsure
    return found


def _convert(raw: dict[int, bytes], meta: dict[int, str], wanted: dict[int, str]) -> dict[int, str]:
    charset = _uid(raw.get(_CHARSET, b""))  # CS: the same decoding, trailing padding removed
    if charset not in _PLAIN_CHARSETS:
        raise _Unsure
    encoding = python_encoding[charset]
    values = dict(meta)
    for tag, vr in wanted.items():
        data = raw.get(tag)
        values[tag] = "" if data is None else _value(data, vr, encoding)
    return values


def _value(data: bytes, vr: str, encoding: str) -> str:
    """pydicom's conversion of a one-valued element, then ``str(value).strip()``."""
    if b"\x1b" in data:  # an escape sequence: code extensions, pydicom's job
        raise _Unsure
    if vr in _STRING_VRS:
        text = data.decode(_DEFAULT_ENCODING)
        if vr == "UI":
            text = text.rstrip("\0 ")
        text = text.rstrip(" \0")
    elif vr in _TEXT_VRS:
        text = data.decode(encoding).rstrip("\0 ")
    else:  # PN: components without the empty ones at the end (pydicom's PersonName)
        text = data.rstrip(b"\0 ").decode(encoding)
        components = text.split("=")
        while components and not components[-1]:
            components.pop()
        text = "=".join(components)
    if "\\" in text:
        raise _Unsure
    return text.strip()


def _uid(data: bytes) -> str:
    """A file meta UID or the character set as pydicom reads it (no further stripping)."""
    text = data.decode(_DEFAULT_ENCODING).rstrip("\0 ")
    if "\\" in text:
        raise _Unsure
    return text
