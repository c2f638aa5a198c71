"""Names, constants and the clear-text tag files of bundle format v1."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.errors import BundleDamaged, BundleFormatUnsupported

FORMAT_VERSION = 1
VOLUME_MARKER = ".courier-volume"
BUNDLES_DIR = "bundles"
OUTBOX_DIR = "outbox"

BAGIT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFEST = "manifest-sha256.txt"
PAYLOAD_SIZES = "payload-sizes.txt"
INDEX = "index.age"
RECEPTION = "reception.age"
TAGMANIFEST = "tagmanifest-sha256.txt"
SIGNATURE = "tagmanifest-sha256.txt.sig"
DATA = "data"
# Every tag file the tag manifest covers (the order of the tag manifest's lines).
TAG_FILES = (BAGIT, BAG_INFO, MANIFEST, PAYLOAD_SIZES, INDEX, RECEPTION)
OBJECTS_PER_DIR = 1000
SIGNATURE_CONTEXT = b"clinic-archive bundle v1 tagmanifest\0"
BAGIT_TEXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"

_BUNDLE_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
# Facility ids name folders (outbox/<facility>) and travel in bag-info: a safe, short slug.
_FACILITY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def object_relpath(seq: int) -> str:
    """Path of object number *seq* (from 1) inside the bundle: ``data/s0000/000001.age``."""
    return f"{DATA}/s{seq // OBJECTS_PER_DIR:04d}/{seq:06d}.age"


def valid_bundle_id(text: str) -> bool:
    return bool(_BUNDLE_ID.match(text))


def valid_facility_id(text: str) -> bool:
    """Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64."""
    return bool(_FACILITY_ID.match(text)) and ".." not in text


@dataclass(frozen=True)
class BagInfo:
    """The clear metadata of a bundle (bag-info.txt): identifies no patient."""

    bundle_id: str
    device_id: str
    device_fingerprint: str
    device_public_key: bytes
    facility_id: str
    created: str
    object_count: int
    study_count: int
    payload_bytes: int
    format_version: int = FORMAT_VERSION

    def render(self) -> bytes:
        if not valid_facility_id(self.facility_id):
            raise ValueError(f"facility id {self.facility_id!r} is not a valid facility id")
        lines = [
            ("Bundle-Id", self.bundle_id),
            ("Bundle-Format-Version", str(self.format_version)),
            ("Courier-Device-Id", self.device_id),
            ("Courier-Device-Fingerprint", self.device_fingerprint),
            ("Courier-Device-Public-Key", base64.b64encode(self.device_public_key).decode()),
            ("Facility-Id", self.facility_id),
            ("Bagging-Date", self.created[:10]),
            ("Created", self.created),
            ("Object-Count", str(self.object_count)),
            ("Study-Count", str(self.study_count)),
            ("Payload-Oxum", f"{self.payload_bytes}.{self.object_count}"),
        ]
        return "".join(f"{k}: {v}\n" for k, v in lines).encode()

    @classmethod
    def parse(cls, data: bytes) -> BagInfo:
        fields: dict[str, str] = {}
        try:
            for line in data.decode("utf-8").splitlines():
                if line.strip():
                    key, _, value = line.partition(":")
                    fields[key.strip()] = value.strip()
            version = int(fields["Bundle-Format-Version"])
        except (UnicodeDecodeError, KeyError, ValueError) as exc:
            raise BundleDamaged(f"{BAG_INFO} is unreadable or lacks its format version") from exc
        if version != FORMAT_VERSION:
            raise BundleFormatUnsupported(
                f"bundle format version {version} is not supported (this software reads "
                f"version {FORMAT_VERSION})"
            )
        try:
            octets, _, count = fields["Payload-Oxum"].partition(".")
            if int(count) != int(fields["Object-Count"]):
                raise ValueError("Payload-Oxum and Object-Count disagree")
            if not valid_facility_id(fields["Facility-Id"]):
                raise ValueError("Facility-Id is not a valid facility id")
            if not valid_bundle_id(fields["Bundle-Id"]):
                raise ValueError("Bundle-Id is not a valid bundle id")
            return cls(
                bundle_id=fields["Bundle-Id"],
                device_id=fields["Courier-Device-Id"],
                device_fingerprint=fields["Courier-Device-Fingerprint"],
                device_public_key=base64.b64decode(
                    fields["Courier-Device-Public-Key"], validate=True
                ),
                facility_id=fields["Facility-Id"],
                created=fields["Created"],
                object_count=int(count),
                study_count=int(fields["Study-Count"]),
                payload_bytes=int(octets),
                format_version=version,
            )
        except (KeyError, ValueError) as exc:
            raise BundleDamaged(f"{BAG_INFO} lacks a valid field ({exc})") from exc


def render_checksums(rows: Iterable[tuple[str, str]]) -> bytes:
    """``sha256sum``-compatible lines: ``<hex>  <path>``."""
    return "".join(f"{digest}  {path}\n" for path, digest in rows).encode()


def parse_checksums(data: bytes, name: str) -> dict[str, str]:
    """Parse a manifest; raise BundleDamaged naming *name* if a line is malformed."""
    result: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleDamaged(f"{name} is not UTF-8 text") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        digest, sep, path = line.partition("  ")
        if not sep or len(digest) != 64 or not path or ".." in Path(path).parts:
            raise BundleDamaged(f"{name} line {number} is malformed")
        result[path] = digest
    return result


def render_sizes(rows: Iterable[tuple[str, int]]) -> bytes:
    return "".join(f"{size} {path}\n" for path, size in rows).encode()


def parse_sizes(data: bytes, name: str) -> dict[str, int]:
    result: dict[str, int] = {}
    try:
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            size, _, path = line.partition(" ")
            if not path:
                raise ValueError(f"line {number}")
            result[path] = int(size)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleDamaged(f"{name} is malformed ({exc})") from exc
    return result
