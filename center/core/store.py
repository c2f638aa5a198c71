"""The content-addressed object store of the embedded default: ``objects/ab/cd/<sha256>``.

Objects are written first (temp file in the archive's ``tmp/``, fsync, rename, fsync dir); the
catalog references them afterwards, so a crash leaves at most unreferenced objects, which
``center check`` reports. Putting an object that already exists is a no-op: re-import is
idempotent. The interface (put, open, exists, path) is small on purpose, so an S3-compatible
store with object lock can stand behind it later (DESIGN.md s7).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from common.errors import ArchiveFull, StorageError
from common.fsio import fsync_dir, sync_file_systems


def _storage_error(exc: OSError, what: str) -> StorageError:
    name = f"object {what[:12]}" if len(what) == 64 else what
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ArchiveFull(f"the archive's disk is full ({name})")
    return StorageError(f"cannot store {name}: {exc.strerror}")


def _make_parents(folder: Path) -> list[Path]:
    """Make *folder* (``ab/cd``) and its parent if missing: the directories whose entries
    changed."""
    changed = []
    for made in (folder.parent, folder):
        try:
            made.mkdir()
        except FileExistsError:
            continue
        changed.append(made.parent)
    return changed


class ObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def put_file(self, tmp: Path, sha256: str) -> bool:
        """Move the fsynced temporary file *tmp* into place as *sha256*; False if already there.

        *tmp* must be on the same filesystem (the archive's tmp/ folder).
        """
        final = self.path(sha256)
        if final.is_file():
            tmp.unlink()
            return False
        try:
            if not final.parent.is_dir():
                final.parent.mkdir(parents=True, exist_ok=True)
                fsync_dir(final.parent.parent)
                fsync_dir(final.parent.parent.parent)
            tmp.replace(final)
            final.chmod(0o444)
            fsync_dir(final.parent)
        except OSError as exc:
            raise _storage_error(exc, sha256) from exc
        return True

    def place(self, tmp: Path, sha256: str) -> list[Path]:
        """Rename the fsynced, read-only temporary file *tmp* into place as *sha256*, like
        :meth:`put_file` but without the directory fsyncs: it returns the directories whose
        entries changed, which the caller must pass to :meth:`sync_dirs` before anything
        refers to the object (a batch of objects then shares them).

        The caller has looked the object up already (an import holds the archive's lock, so
        nobody else adds it meanwhile; and were it there, a content address names the same
        bytes): the rename is tried first and the directories made only when it says they are
        missing, which spares an import three system calls per object.
        """
        final = self.path(sha256)
        try:
            try:
                tmp.rename(final)
                return [final.parent]
            except FileNotFoundError:  # its folder is missing (or tmp: raised again below)
                pass
            changed = [final.parent, *_make_parents(final.parent)]
            tmp.rename(final)
        except OSError as exc:
            raise _storage_error(exc, sha256) from exc
        return changed

    def sync_dirs(self, dirs: Iterable[Path]) -> None:
        """Make the entries :meth:`place` changed in *dirs* durable (one syncfs of the file
        system, not one fsync a directory: common.fsio.sync_file_systems)."""
        try:
            sync_file_systems(dirs)
        except OSError as exc:
            raise _storage_error(exc, "directories") from exc

    def remove(self, sha256: str) -> int | None:
        """Delete object *sha256*; its size, or None if it was not there.

        Only for objects no catalogued instance references any more (the caller checks: the
        catalog is the truth). The directory is fsynced so the removal survives a power cut.
        """
        final = self.path(sha256)
        try:
            size = final.stat().st_size
            final.unlink()
            fsync_dir(final.parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot remove object {sha256[:12]}: {exc.strerror}") from exc
        return size

    def __iter__(self) -> Iterator[str]:
        """Every stored object's sha256."""
        for path in sorted(self.root.glob("??/??/*")):
            if path.is_file() and len(path.name) == 64:
                yield path.name
