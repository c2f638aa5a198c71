"""Reading a bundle with the center's key: the encrypted index, reception log and objects."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from common.bundle import format as fmt
from common.crypto import decrypt_bytes, decrypt_file_to
from common.dicomhdr import InstanceHeader
from common.errors import BundleDamaged, DecryptError
from common.fsio import RecordingWriter


@dataclass(frozen=True)
class IndexEntry:
    """One object as the index describes it."""

    seq: int
    path: str
    sha256: str
    size: int
    source_relpath: str
    header: InstanceHeader

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "source_relpath": self.source_relpath,
            "header": self.header.to_dict(),
        }


def _entry(item: dict[str, Any]) -> IndexEntry:
    return IndexEntry(
        seq=int(item["seq"]),
        path=str(item["path"]),
        sha256=str(item["sha256"]),
        size=int(item["size"]),
        source_relpath=str(item.get("source_relpath", "")),
        header=InstanceHeader.from_dict(item["header"]),
    )


class BundleIndex:
    """The decrypted index, spooled to an anonymous temporary file and read line by line.

    An import goes through it four times (checks, storing, catalog, receipt); the entries of
    an index of up to :data:`KEPT_ENTRIES` objects are kept after the first whole pass (about
    1.8 KB each: 4.5 MB for 2,452), a bigger index is read from the spool each time (memory
    stays flat).
    """

    KEPT_ENTRIES = 10_000

    def __init__(self, spool: BinaryIO, header: dict[str, Any]) -> None:
        self._spool = spool
        self.header = header
        self._kept: list[IndexEntry] | None = None

    def __iter__(self) -> Iterator[IndexEntry]:
        if self._kept is not None:
            yield from self._kept
            return
        kept: list[IndexEntry] | None = []
        self._spool.seek(0)
        self._spool.readline()
        for number, line in enumerate(self._spool, start=2):
            try:
                entry = _entry(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                raise BundleDamaged(f"{fmt.INDEX} entry on line {number} is malformed") from exc
            if kept is not None:
                kept.append(entry)
                if len(kept) > self.KEPT_ENTRIES:
                    kept = None
            yield entry
        self._kept = kept

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> BundleIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SpoolWriteError(OSError):
    """The decrypted index could not be written to the spool (the archive's disk), as opposed
    to the drive failing to give index.age."""


def open_index(
    bundle_dir: Path, identity: str, info: fmt.BagInfo, *, spool_dir: Path
) -> BundleIndex:
    """Decrypt index.age and check that it names this bundle, device and facility.

    The plaintext index holds patient data: it is spooled to an unlinked temporary file in
    *spool_dir*, which must be on the protected archive filesystem, never the system temp.
    """
    spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - owned by the BundleIndex
    sink = RecordingWriter(spool)
    try:
        decrypt_file_to(bundle_dir / fmt.INDEX, cast(BinaryIO, sink), identity)
        spool.seek(0)
        header = json.loads(spool.readline())
    except OSError as exc:  # DecryptError is not one
        spool.close()
        if exc is sink.error:
            raise SpoolWriteError(exc.errno, exc.strerror) from exc
        raise
    except DecryptError:
        spool.close()
        raise
    except ValueError as exc:
        spool.close()
        raise BundleDamaged(f"{fmt.INDEX} does not start with a valid header") from exc
    expected = {
        "kind": "bundle-index",
        "format": fmt.FORMAT_VERSION,
        "bundle_id": info.bundle_id,
        "device_id": info.device_id,
        "device_fingerprint": info.device_fingerprint,
        "facility_id": info.facility_id,
    }
    wrong = [key for key, value in expected.items() if header.get(key) != value]
    if wrong:
        spool.close()
        raise BundleDamaged(
            f"{fmt.INDEX} belongs to another bundle or device (mismatch in {', '.join(wrong)})",
            hint="The bundle was tampered with; keep the drive and report it.",
        )
    return BundleIndex(spool, header)


def read_reception(bundle_dir: Path, identity: str) -> dict[str, Any]:
    data = decrypt_bytes((bundle_dir / fmt.RECEPTION).read_bytes(), identity)
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise BundleDamaged(f"{fmt.RECEPTION} is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise BundleDamaged(f"{fmt.RECEPTION} is not a JSON object")
    return doc


def decrypt_object(bundle_dir: Path, entry: IndexEntry, identity: str, dst: BinaryIO) -> str:
    """Decrypt *entry* into *dst* (a temp file the caller deletes on error); return sha256."""
    digest, size = decrypt_file_to(bundle_dir / entry.path, dst, identity)
    if size != entry.size:
        raise DecryptError(
            f"object {entry.path} decrypted to {size} bytes, index says {entry.size}"
        )
    return digest
