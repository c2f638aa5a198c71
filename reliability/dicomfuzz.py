"""Hostile and odd DICOM files for the clinic terminal, described by hypothesis strategies.

A :class:`FileSpec` is (kind, parameters); :func:`materialise` turns it into bytes, starting from
a valid synthetic "A" instance where that makes sense: truncated, bit-flipped, with a broken
preamble, a huge or odd element length, a wrong VR code, sequences nested thousands deep, a UID
removed, a huge value, a person name in one of DICOM's character sets (or a bogus one), a
transfer syntax that lies, or plain noise.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset

FileSpec = tuple[Any, ...]
CHARSETS = (
    "ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 87", "ISO 2022 IR 13", "ISO 2022 IR 149",
    "GB18030", "GBK", "ISO_IR 144", "ISO_IR 127", "ISO_IR 126", "ISO_IR 138", "ISO_IR 166",
    "ISO_IR 999", "", "\\ISO 2022 IR 87",
)  # fmt: skip
UID_KEYWORDS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID")
HUGE_LENGTHS = (0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x10000001, 3, 1)


def specs(bases: int) -> st.SearchStrategy[FileSpec]:
    """One hostile file, made from base instance number 0..bases-1 where it needs one."""
    base = st.integers(0, bases - 1)
    frac = st.floats(0, 1)
    flips = st.lists(st.tuples(frac, st.integers(0, 255)), min_size=1, max_size=8)
    preambles = st.sampled_from(["no-dicm", "no-preamble", "empty", "only-preamble"])
    vrs = st.sampled_from([b"SQ", b"UN", b"OB", b"XX", b"\0\0", b"UT"])
    huge = st.integers(1 << 10, 6 << 20)
    syntaxes = st.sampled_from(["implicit-as-explicit", "big-endian", "deflate-label"])
    return st.one_of(
        st.tuples(st.just("truncate"), base, frac),
        st.tuples(st.just("flip"), base, flips),
        st.tuples(st.just("preamble"), base, preambles),
        st.tuples(st.just("length"), base, st.integers(0, 40), st.sampled_from(HUGE_LENGTHS)),
        st.tuples(st.just("vr"), base, st.integers(0, 40), vrs),
        st.tuples(st.just("deep"), base, st.integers(20, 3000), st.booleans()),
        st.tuples(st.just("missing-uid"), base, st.sampled_from(UID_KEYWORDS)),
        st.tuples(st.just("huge-value"), base, huge, st.sampled_from(["LO", "UN", "OB", "UT"])),
        st.tuples(st.just("charset"), base, st.sampled_from(CHARSETS), st.text(max_size=40)),
        st.tuples(st.just("syntax"), base, syntaxes),
        st.tuples(st.just("noise"), st.binary(min_size=0, max_size=4096)),
    )


def _elements(data: bytes) -> list[int]:
    """Offsets of explicit-VR little-endian element headers after the file meta (best effort)."""
    offsets: list[int] = []
    pos = 132
    while pos + 8 <= len(data) and len(offsets) < 64:
        vr = data[pos + 4 : pos + 6]
        if not vr.isalpha():
            break
        offsets.append(pos)
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OD", b"OL", b"OV"):
            (length,) = struct.unpack("<I", data[pos + 8 : pos + 12])
            pos += 12 + (0 if length == 0xFFFFFFFF else length)
        else:
            (length,) = struct.unpack("<H", data[pos + 6 : pos + 8])
            pos += 8 + length
    return offsets


def _dataset(data: bytes) -> Dataset:
    return dcmread(io.BytesIO(data))


def _save(ds: Dataset, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, **kwargs)
    return out.getvalue()


def _nested(depth: int, undefined: bool) -> bytes:
    """A ContentSequence (0040,A730) nested *depth* deep, as bytes (pydicom's writer recurses
    per level and cannot write it): undefined lengths with delimiters, or defined lengths."""
    leaf = b"\x08\x00\x00\x01SH\x02\x00X "  # (0008,0100) CodeValue
    if undefined:
        head = b"\x40\x00\x30\xa7SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
        tail = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        return head * depth + leaf + tail * depth
    body = leaf
    for _ in range(depth):
        item = b"\xfe\xff\x00\xe0" + struct.pack("<I", len(body)) + body
        body = b"\x40\x00\x30\xa7SQ\x00\x00" + struct.pack("<I", len(item)) + item
    return body


def materialise(spec: FileSpec, bases: list[bytes]) -> tuple[bytes, list[str]]:
    """The file's bytes, and any text values put in it (looked for in the output later)."""
    kind, *args = spec
    values: list[str] = []
    if kind == "noise":
        return args[0], values
    data = bases[args[0]]
    maker: dict[str, Callable[[], bytes]] = {
        "truncate": lambda: data[: int(len(data) * args[1])],
        "flip": lambda: _flip(data, args[1]),
        "preamble": lambda: _preamble(data, args[1]),
        "length": lambda: _length(data, args[1], args[2]),
        "vr": lambda: _vr(data, args[1], args[2]),
        "deep": lambda: _deep(data, args[1], args[2]),
        "missing-uid": lambda: _missing(data, args[1]),
        "huge-value": lambda: _huge(data, args[1], args[2]),
        "charset": lambda: _charset(data, args[1], args[2]),
        "syntax": lambda: _syntax(data, args[1]),
    }
    if kind == "charset":
        args[2] = f"Zqx{args[2]}"  # a marker no reason or message can contain by chance
        values.append(args[2])
    return maker[kind](), values


def _flip(data: bytes, changes: list[tuple[float, int]]) -> bytes:
    out = bytearray(data)
    for where, value in changes:
        out[min(int(where * len(out)), len(out) - 1)] = value
    return bytes(out)


def _preamble(data: bytes, how: str) -> bytes:
    return {
        "no-dicm": data[:128] + b"DICX" + data[132:],
        "no-preamble": data[128:],
        "empty": b"",
        "only-preamble": data[:132],
    }[how]


def _length(data: bytes, which: int, length: int) -> bytes:
    offsets = _elements(data)
    pos = offsets[which % len(offsets)]
    out = bytearray(data)
    if data[pos + 4 : pos + 6] in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        out[pos + 8 : pos + 12] = struct.pack("<I", length)
    else:
        out[pos + 6 : pos + 8] = struct.pack("<H", length & 0xFFFF)
    return bytes(out)


def _vr(data: bytes, which: int, vr: bytes) -> bytes:
    offsets = _elements(data)
    pos = offsets[which % len(offsets)]
    return data[: pos + 4] + vr + data[pos + 6 :]


def _deep(data: bytes, depth: int, undefined: bool) -> bytes:
    pixels = data.rfind(b"\xe0\x7f\x10\x00")  # (7FE0,0010): the sequence goes before it
    at = pixels if pixels > 0 else len(data)
    return data[:at] + _nested(depth, undefined) + data[at:]


def _missing(data: bytes, keyword: str) -> bytes:
    ds = _dataset(data)
    if keyword in ds:
        delattr(ds, keyword)
    return _save(ds)


def _huge(data: bytes, size: int, vr: str) -> bytes:
    ds = _dataset(data)
    value: Any = "A" * size if vr in ("LO", "UT") else b"\x01" * (size + size % 2)
    ds.add_new(0x00091010 if vr in ("UN", "OB") else 0x00104000, vr if vr != "LO" else "LT", value)
    return _save(ds)


def _charset(data: bytes, charset: str, name: str) -> bytes:
    ds = _dataset(data)
    ds.SpecificCharacterSet = charset
    ds.PatientName = name
    try:
        return _save(ds)
    except (LookupError, UnicodeError, ValueError):
        ds.SpecificCharacterSet = "ISO_IR 192"
        return _save(ds)


def _syntax(data: bytes, how: str) -> bytes:
    ds = _dataset(data)
    out = io.BytesIO()
    if how == "big-endian":
        dcmwrite(out, ds, implicit_vr=False, little_endian=False, force_encoding=True)
        return out.getvalue()  # big endian data, still labelled explicit little endian
    if how == "implicit-as-explicit":
        dcmwrite(out, ds, implicit_vr=True, little_endian=True, force_encoding=True)
        return out.getvalue()  # implicit VR data labelled explicit VR
    raw = _save(ds)  # explicit VR little endian labelled as deflated
    return raw.replace(b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1.2.1.99", 1)
