"""Durable file-system primitives: atomic small-file writes, fsync of files and directories.

Every small file (configuration, cards, receipts, BagIt tag files) is written with
:func:`atomic_write`: a temporary file in the same directory, fsync, ``os.replace``, fsync of the
directory, as borg's ``SaveFile``. A crash leaves either the old or the new content, never a mix.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp-partial"


def fsync_dir(path: Path) -> None:
    """Flush a directory entry so that a rename or create inside it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_file_systems(dirs: Iterable[Path]) -> None:
    """Make what was created or renamed in *dirs* durable: one ``syncfs(2)`` per file system
    they are on, where fsyncing each directory would commit the file system's journal once a
    directory (an import of 2,452 objects into a fresh archive fsynced 3,231 directories of the
    object store, new ``ab/`` and ``ab/cd/`` folders: 0.11 s a batch of 1,024). Without syncfs
    (not Linux), each directory is fsynced.

    syncfs flushes the whole file system, other writers' data included, and reports an error
    of that flush (its journal commit); the files' own data must have been fsynced already (a
    write-back error that happened earlier is reported by the file's fsync, not here).
    """
    if _libc_syncfs() is None:
        for directory in dict.fromkeys(dirs):
            fsync_dir(directory)
        return
    one_per_device: dict[int, Path] = {}
    for directory in dirs:
        one_per_device.setdefault(directory.stat().st_dev, directory)
    for directory in one_per_device.values():
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            syncfs(fd)
        finally:
            os.close(fd)


def syncfs(fd: int) -> None:
    """``syncfs(2)`` of the file system holding *fd*, raising OSError as ``os.fsync`` does
    (Python has no ``os.syncfs``; the fault-injection tools count it as an fsync)."""
    call = _libc_syncfs()
    if call is None:
        raise OSError(38, "syncfs is not available here")
    if call(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    call.argtypes, call.restype = [ctypes.c_int], ctypes.c_int
    return call


def temp_path_for(path: Path) -> Path:
    """A unique temporary name beside *path*, recognisable by :data:`TEMP_SUFFIX` for clean-up."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


@contextlib.contextmanager
def atomic_output(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces *path* atomically when the block succeeds."""
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def read_file(path: Path) -> bytes:
    """A whole file's bytes in as few system calls as its size allows: open, fstat, one read
    (looped while short), close. ``Path.read_bytes`` also asks whether the file is a terminal
    and where it stands, and every call gives the interpreter lock away and back, which costs
    more than the call itself while other threads want it (an import reads thousands)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size) if size else b""
        while len(data) < size:  # a short read: go on until the size or the end of the file
            more = os.read(fd, size - len(data))
            if not more:
                break
            data += more
    finally:
        os.close(fd)
    return data


def write_new_file(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Create *path* (which must not exist) holding *data*, fsynced; checked, not trusted.

    Every write is looped until complete (a short write is retried, a zero-byte one is an
    error), the size on disk must be the size sent, then the file is fsynced. On any error the
    file is removed and the OSError propagates. The caller renames it into place.
    """
    finish_new_file(path, start_new_file(path, data, mode=mode))


def start_new_file(path: Path, data: bytes, *, mode: int = 0o644) -> int:
    """The first half of :func:`write_new_file`: written and checked, not yet fsynced; the
    open descriptor is returned for :func:`finish_new_file` (possibly in another thread).

    Write-back to the device is started at once (``POSIX_FADV_DONTNEED`` starts it for dirty
    pages without waiting), so the later fsync mostly waits for what is already under way.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(28, "short write")
            view = view[written:]
        size = os.fstat(fd).st_size
        if size != len(data):
            raise OSError(5, f"short write: {len(data)} bytes sent, {size} on disk")
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return fd


def finish_new_file(path: Path, fd: int) -> None:
    """fsync and close what :func:`start_new_file` wrote (the file is removed if that fails)."""
    try:
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write *data* to *path* atomically and durably."""
    with atomic_output(path, mode=mode) as fh:
        fh.write(data)


def remove_temp_files(directory: Path) -> int:
    """Delete temporary files left by an interrupted write below *directory*; return how many."""
    removed = 0
    if not directory.exists():
        return 0
    for tmp in directory.rglob(f"*{TEMP_SUFFIX}"):
        tmp.unlink()
        removed += 1
    return removed


def evict_from_cache(fd: int, *, synced: bool = False) -> None:
    """Ask the kernel to drop the open file *fd* from the page cache so that reading it again
    comes from the device.

    Used before sealing a bundle: the read-back must see what the drive holds, not what the
    laptop still remembers. Dirty pages cannot be dropped: unless the caller fsynced the file
    itself (*synced*), it is fdatasynced first. Best effort where ``posix_fadvise`` is not
    available.
    """
    if not hasattr(os, "posix_fadvise"):
        return
    if not synced:
        os.fdatasync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


class RecordingReader:
    """Reads *stream*, remembering its own read error before it propagates: a library that
    reports every failure alike (pyrage: damaged input and a failing drive are the same
    OSError) is then told apart by the caller."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.error: OSError | None = None

    def read(self, n: int = -1) -> bytes:
        try:
            return self._stream.read(n)
        except OSError as exc:
            self.error = exc
            raise


class RecordingWriter:
    """Writes to *stream*, remembering its own write error before it propagates (as
    :class:`RecordingReader` does for reads)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self._stream.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._stream.flush()
