"""Walking a DICOM data set's element structure to its end, without reading values.

PS3.5 section 7: each element is a tag, (explicit VR) a value representation, a length and a
value. A defined length is skipped; an undefined length (0xFFFFFFFF) opens a sequence or
encapsulated pixel data whose items end with a sequence delimiter (PS3.5 section 7.5, A.4).
The walk proves that every element, item and sequence the file starts also ends within it:
it catches files cut short, which a lenient parser reads without complaint.
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 table 7.1-1).
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_ITEM = (0xFFFE, 0xE000)
_ITEM_END = (0xFFFE, 0xE00D)
_SEQUENCE_END = (0xFFFE, 0xE0DD)
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 64


class StructureError(Exception):
    """The data set's structure is broken; the message names the element, not its value."""


class Truncated(StructureError):
    """The file ends before an element, item or sequence it started."""


_WINDOW = 64 << 10  # bytes read at once: element headers are small and mostly close together


class _Reader:
    """Reads element headers through a window of the stream (one read for many headers)."""

    def __init__(self, stream: BinaryIO, end: int, little: bool) -> None:
        self._stream = stream
        self.end = end
        self._short = "<HH" if little else ">HH"
        self._int = "<I" if little else ">I"
        self._half = "<H" if little else ">H"
        self._start = 0
        self._window = b""

    def read(self, pos: int, n: int, what: str) -> bytes:
        if pos + n > self.end:
            raise Truncated(f"the file ends inside {what}")
        offset = pos - self._start
        if offset < 0 or offset + n > len(self._window):
            self._stream.seek(pos)
            self._window = self._stream.read(max(n, min(_WINDOW, self.end - pos)))
            self._start, offset = pos, 0
        data = self._window[offset : offset + n]
        if len(data) < n:
            raise Truncated(f"the file ends inside {what}")
        return data

    def tag(self, pos: int) -> tuple[int, int]:
        group, element = struct.unpack(self._short, self.read(pos, 4, "an element tag"))
        return int(group), int(element)

    def u32(self, pos: int, what: str) -> int:
        return int(struct.unpack(self._int, self.read(pos, 4, what))[0])

    def u16(self, pos: int, what: str) -> int:
        return int(struct.unpack(self._half, self.read(pos, 2, what))[0])


def walk_to_end(
    source: BinaryIO | bytes, start: int, end: int, *, little: bool, explicit: bool
) -> None:
    """Walk the elements from *start* to *end*; raise :class:`StructureError` if broken."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    reader = _Reader(stream, end, little)
    _walk_dataset(reader, start, explicit, 0, in_item=False)


def skip_items(
    stream: BinaryIO,
    pos: int,
    end: int,
    *,
    little: bool,
    explicit: bool,
    owner: tuple[int, int],
) -> int:
    """Walk the items of the undefined-length sequence (or encapsulated pixel data) of element
    *owner* whose value starts at *pos*; return the offset after its delimiter.

    Raises :class:`StructureError` when the items are broken (as :func:`walk_to_end` would).
    """
    return _walk_items(_Reader(stream, end, little), pos, explicit, 1, owner)


def _name(tag: tuple[int, int]) -> str:
    return f"element ({tag[0]:04X},{tag[1]:04X})"


def _looks_implicit(reader: _Reader, pos: int) -> bool:
    """True when the element at *pos* has no VR where explicit VR encoding puts one.

    Some writers label a data set explicit VR and write it implicit; readers such as pydicom
    and dcmtk detect this on the first element of a data set, and so does the walk.
    """
    if pos + 6 > reader.end:
        return False
    tag = reader.tag(pos)
    vr = reader.read(pos + 4, 2, _name(tag))
    return tag[0] != 0xFFFE and not (vr.isalpha() and vr.isupper())


def _walk_dataset(reader: _Reader, pos: int, explicit: bool, depth: int, *, in_item: bool) -> int:
    if explicit and _looks_implicit(reader, pos):
        explicit = False
    while pos < reader.end:
        tag = reader.tag(pos)
        if tag == _ITEM_END and in_item:
            return pos + 8
        if tag[0] == 0xFFFE:
            raise StructureError(f"a stray delimiter {_name(tag)} inside the data set")
        if explicit:
            vr = reader.read(pos + 4, 2, _name(tag))
            if not (vr.isalpha() and vr.isupper()):
                raise StructureError(f"{_name(tag)} has no valid value representation")
            if vr in _LONG_VRS:
                length = reader.u32(pos + 8, _name(tag))
                pos += 12
            else:
                length = reader.u16(pos + 6, _name(tag))
                pos += 8
        else:
            vr = b""
            length = reader.u32(pos + 4, _name(tag))
            pos += 8
        if length == _UNDEFINED:
            # An undefined-length UN holds an implicit VR little endian sequence (PS3.5 6.2.2).
            pos = _walk_items(reader, pos, explicit and vr != b"UN", depth + 1, tag)
        elif pos + length > reader.end:
            raise Truncated(
                f"{_name(tag)} declares {length} bytes and only {reader.end - pos} remain"
            )
        else:
            pos += length
    if in_item:
        raise Truncated("an undefined-length item has no end marker")
    return pos


def _walk_items(
    reader: _Reader, pos: int, explicit: bool, depth: int, owner: tuple[int, int]
) -> int:
    if depth > _MAX_DEPTH:
        raise StructureError("sequences are nested too deeply")
    while True:
        if pos + 8 > reader.end:
            raise Truncated(f"the sequence or pixel data of {_name(owner)} has no end marker")
        tag = reader.tag(pos)
        length = reader.u32(pos + 4, "an item header")
        pos += 8
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            raise StructureError(f"{_name(owner)} holds {_name(tag)} where an item belongs")
        if length == _UNDEFINED:
            pos = _walk_dataset(reader, pos, explicit, depth + 1, in_item=True)
        elif pos + length > reader.end:
            raise Truncated(f"an item of {_name(owner)} declares more bytes than remain")
        else:
            pos += length
