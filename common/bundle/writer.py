"""Writing and sealing a bundle (DESIGN.md s4 and s6).

Objects are encrypted into a temporary file, fsynced, renamed into place and the directory
fsynced; only then may the caller record them in its journal. Sealing writes the encrypted index
and reception log, the clear manifests and bag-info, the tag manifest, and last the Ed25519
signature of the tag manifest: the signature's presence is the commit point.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from common.bundle import format as fmt
from common.canonical import canonical_json
from common.crypto import ObjectDigest, encrypt_to_file, sign
from common.errors import BundleError
from common.fsio import (
    atomic_write,
    evict_from_cache,
    finish_new_file,
    fsync_dir,
    remove_temp_files,
    start_new_file,
    temp_path_for,
)

_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class SealedObject:
    """One payload file as the manifest records it."""

    relpath: str
    cipher_sha256: str
    cipher_size: int


@dataclass(frozen=True)
class StagedObject:
    """An object written to its temporary file, waiting for its fsync and rename."""

    seq: int
    tmp: Path
    fd: int
    ciphertext: bytes  # what was written, hashed when committed (off the writing thread)


class _LinesReader:
    """A read()-able stream over an iterator of byte lines, so the index is never on disk
    in clear and never whole in memory."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines: Iterator[bytes] = iter(lines)
        self._buffer = bytearray()

    def read(self, n: int = -1) -> bytes:
        want = _READ_CHUNK if n is None or n < 0 else n
        while len(self._buffer) < want:
            try:
                self._buffer += next(self._lines)
            except StopIteration:
                break
        chunk = bytes(self._buffer[:want])
        del self._buffer[:want]
        return chunk


def hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def index_header(info: fmt.BagInfo) -> dict[str, Any]:
    """The first line of index.age: repeats the ids that bind the index to this bundle."""
    return {
        "kind": "bundle-index",
        "format": fmt.FORMAT_VERSION,
        "bundle_id": info.bundle_id,
        "device_id": info.device_id,
        "device_fingerprint": info.device_fingerprint,
        "facility_id": info.facility_id,
        "created": info.created,
        "object_count": info.object_count,
    }


class BundleWriter:
    """Builds one bundle folder under ``<drive>/bundles/<bundle-id>/``."""

    def __init__(self, bundle_dir: Path) -> None:
        self.dir = bundle_dir

    @classmethod
    def open(cls, bundles_root: Path, bundle_id: str) -> BundleWriter:
        """Create the folder, or reopen it to resume; refuse a bundle already sealed."""
        bundle_dir = bundles_root / bundle_id
        if (bundle_dir / fmt.SIGNATURE).exists():
            raise BundleError(f"bundle {bundle_id} is already sealed and cannot be reopened")
        (bundle_dir / fmt.DATA).mkdir(parents=True, exist_ok=True)
        fsync_dir(bundles_root)
        return cls(bundle_dir)

    def remove_temp_files(self) -> int:
        """Delete what an interrupted write left behind; return the count."""
        return remove_temp_files(self.dir)

    def write_object(self, seq: int, src: BinaryIO, recipients: list[str]) -> ObjectDigest:
        """Encrypt *src* as object *seq*; durable on return (temp, fsync, rename, fsync dir)."""
        final = self.dir / fmt.object_relpath(seq)
        if not final.parent.is_dir():
            final.parent.mkdir(parents=True, exist_ok=True)
            fsync_dir(final.parent.parent)
        tmp = temp_path_for(final)
        digest = encrypt_to_file(src, tmp, recipients)
        tmp.replace(final)
        fsync_dir(final.parent)
        return digest

    def stage_ciphertext(self, seq: int, ciphertext: bytes) -> StagedObject:
        """Write an object encrypted in memory to a temporary file beside object *seq*: checked
        writes, not yet fsynced (:meth:`commit_staged` does that and renames it)."""
        final = self.dir / fmt.object_relpath(seq)
        if not final.parent.is_dir():
            final.parent.mkdir(parents=True, exist_ok=True)
            fsync_dir(final.parent.parent)
        tmp = temp_path_for(final)
        return StagedObject(seq, tmp, start_new_file(tmp, ciphertext), ciphertext)

    def commit_staged(self, staged: StagedObject) -> tuple[str, int]:
        """fsync a staged object and rename it into place: (ciphertext sha256, size).

        NOT yet durable on return: the caller must call :meth:`sync_dirs` for it before
        recording it anywhere (directory fsyncs are batched).
        """
        digest = hashlib.sha256(staged.ciphertext).hexdigest()
        finish_new_file(staged.tmp, staged.fd)
        staged.tmp.replace(self.dir / fmt.object_relpath(staged.seq))
        return digest, len(staged.ciphertext)

    def sync_dirs(self, seqs: Iterable[int]) -> None:
        """Make the renames of objects *seqs* durable: one fsync per directory holding them."""
        for folder in sorted({(self.dir / fmt.object_relpath(seq)).parent for seq in seqs}):
            fsync_dir(folder)

    def read_back(self, seq: int, *, synced: bool = False) -> tuple[str, int]:
        """Re-read object *seq* from the device (page cache evicted): (sha256, size).

        *synced* says the object was fsynced by this process (its cached pages are clean and
        can be dropped at once); otherwise it is fdatasynced first, as dirty pages cannot be.
        """
        path = self.dir / fmt.object_relpath(seq)
        digest, size = hashlib.sha256(), 0
        with path.open("rb", buffering=0) as fh:
            evict_from_cache(fh.fileno(), synced=synced)
            while chunk := fh.read(_READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def seal(
        self,
        *,
        info: fmt.BagInfo,
        objects: list[SealedObject],
        index_entries: Iterable[dict[str, Any]],
        reception: dict[str, Any],
        recipients: list[str],
        signing_seed: bytes,
    ) -> None:
        """Write every tag file, then the signature last. *objects* must have been read back."""
        header = index_header(info)
        lines = (
            json.dumps(item, sort_keys=True, ensure_ascii=False).encode() + b"\n"
            for item in _chain(header, index_entries)
        )
        self._encrypt_tag(fmt.INDEX, _LinesReader(lines), recipients)
        reception_doc = {**reception, "bundle_id": info.bundle_id, "device_id": info.device_id}
        self._encrypt_tag(fmt.RECEPTION, _LinesReader([canonical_json(reception_doc)]), recipients)
        atomic_write(
            self.dir / fmt.MANIFEST,
            fmt.render_checksums((o.relpath, o.cipher_sha256) for o in objects),
        )
        atomic_write(
            self.dir / fmt.PAYLOAD_SIZES,
            fmt.render_sizes((o.relpath, o.cipher_size) for o in objects),
        )
        atomic_write(self.dir / fmt.BAGIT, fmt.BAGIT_TEXT)
        atomic_write(self.dir / fmt.BAG_INFO, info.render())
        tag_rows = [(name, hash_file(self.dir / name)[0]) for name in fmt.TAG_FILES]
        tagmanifest = fmt.render_checksums(tag_rows)
        atomic_write(self.dir / fmt.TAGMANIFEST, tagmanifest)
        signature = sign(signing_seed, fmt.SIGNATURE_CONTEXT + tagmanifest)
        atomic_write(self.dir / fmt.SIGNATURE, base64.b64encode(signature) + b"\n")

    def _encrypt_tag(self, name: str, reader: _LinesReader, recipients: list[str]) -> None:
        final = self.dir / name
        tmp = temp_path_for(final)
        encrypt_to_file(reader, tmp, recipients)
        tmp.replace(final)
        fsync_dir(self.dir)


def _chain(first: dict[str, Any], rest: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest
