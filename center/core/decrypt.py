"""Decrypting one bundle object into the store, checking it on the way (DESIGN.md s4, s6).

The object is decrypted into a temporary file in the archive's ``tmp/`` (same filesystem as
the store) through :class:`common.crypto.GuardedWriter`, which keeps any write error: pyrage
reports a failing sink as a decryption failure, and a full archive disk must never be mistaken
for a damaged object. The plaintext's sha256 and size must be what the index promises, and
pydicom must read from it the SOP Instance UID (and the study, series and SOP class) the index
names. Only then is it fsynced and renamed into the content-addressed store.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from common.bundle.reader import IndexEntry, decrypt_object
from common.crypto import GuardedWriter
from common.dicomhdr import HeaderError, read_header
from common.errors import ArchiveFull, DecryptError, StorageError

if TYPE_CHECKING:
    from center.core.archive import Archive

_CHECKED = (
    ("sop_instance_uid", "SOP Instance UID"),
    ("study_instance_uid", "Study Instance UID"),
    ("series_instance_uid", "Series Instance UID"),
    ("sop_class_uid", "SOP Class UID"),
)


def storage_error(exc: OSError, what: str) -> StorageError:
    """The error for a failed write to the archive: full disk apart from every other cause."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ArchiveFull(f"the archive's disk is full ({what})")
    return StorageError(f"cannot write to the archive ({what}): {exc.strerror or exc}")


def store_object(
    archive: Archive, identity: str, bundle_dir: Path, entry: IndexEntry
) -> str | None:
    """Decrypt, check and store *entry*; None when stored, else why it was rejected.

    An object already in the store (from an earlier bundle, or an interrupted run of this
    import) is not decrypted again: the store holds exactly those bytes, and only their header
    is checked against the index. Raises ArchiveFull or StorageError when the archive cannot
    take it.
    """
    if archive.store.exists(entry.sha256):
        return check_header(archive.store.path(entry.sha256), entry)
    tmp = archive.paths.tmp / f"{secrets.token_hex(8)}.tmp-partial"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise storage_error(exc, "temporary file") from exc
    try:
        writer = GuardedWriter(fd)
        try:
            digest = decrypt_object(bundle_dir, entry, identity, cast(BinaryIO, writer))
        except OSError as exc:  # the archive's disk; else the drive's, for the caller
            if writer.error is not None:
                raise storage_error(writer.error, f"object {entry.path}") from exc
            raise
        except DecryptError as exc:
            return f"does not decrypt with the center key ({exc.message})"
        try:
            os.fsync(fd)
        except OSError as exc:
            raise storage_error(exc, f"object {entry.path}") from exc
        reason = _check(tmp, entry, digest)
        if reason is not None:
            return reason
        archive.store.put_file(tmp, entry.sha256)
        return None
    finally:
        os.close(fd)
        tmp.unlink(missing_ok=True)


def _check(tmp: Path, entry: IndexEntry, digest: str) -> str | None:
    if digest != entry.sha256:
        return "decrypts to other bytes than the index promises (sha256 mismatch)"
    return check_header(tmp, entry)


def check_header(source: Path | bytes, entry: IndexEntry) -> str | None:
    """Why the instance in *source* (a file, or its bytes) is not the one *entry* names, or
    None when it is."""
    try:
        header = read_header(source)
    except HeaderError as exc:
        return f"is not readable DICOM: {exc.reason}"
    for name, label in _CHECKED:
        if getattr(header, name) != getattr(entry.header, name):
            return f"holds another instance than the index names ({label} mismatch)"
    return None
