"""The file operations the fault-injection tools count, numbered the same way by all of them.

tests/faultinject.py (kill, ENOSPC or EIO at the Nth operation), tests/courier/opcount.py
(list them, for the crash tests and the reliability suite), tests/courier/fillat.py (fill the
disk at the Nth), reliability/raiseat.py (an unexpected exception at the Nth) and the count of
tests/e2e/test_import_crash.py (in-process) all call :func:`install`, so operation N is the
same operation for each of them. Counted, in the order a run makes them:

* ``write``: ``os.write`` on anything but the terminal (fds 0-2), and every ``write`` of a file
  opened for writing through ``open``, ``io.open``, ``os.fdopen`` or ``Path.open`` /
  ``write_bytes`` / ``write_text`` (buffered writes: :func:`common.fsio.atomic_write`, tag
  files, receipts, configuration);
* ``fsync``: ``os.fsync``, ``os.fdatasync`` and ``common.fsio.syncfs`` (syncfs(2), through
  ctypes);
* ``replace``: ``os.replace`` and ``os.rename`` (``Path.replace`` / ``rename`` call them);
* ``mkdir``: ``os.mkdir``, only when asked for.

Not counted, and so never failed: SQLite's own I/O (the courier's journal, the center's
catalog), which happens inside the C library. Nothing here is imported by product code.
"""

from __future__ import annotations

import builtins
import io
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

OnOp = Callable[[str, str], None]  # (kind, path), called BEFORE the operation

KINDS = ("write", "fsync", "replace", "mkdir")
DEFAULT_KINDS = frozenset({"write", "fsync", "replace"})
_TERMINAL = (0, 1, 2)  # the terminal is not the disk under test


def fd_path(fd: int) -> str:
    """The path an open descriptor refers to, or ``?``."""
    try:
        return str(Path(f"/proc/self/fd/{fd}").readlink())
    except OSError:
        return "?"


class _CountedFile:
    """A file opened for writing whose every ``write`` is an operation (then delegated)."""

    def __init__(self, raw: Any, on_op: OnOp) -> None:
        self._raw = raw
        self._on_op = on_op

    def _path(self) -> str:
        try:
            return fd_path(self._raw.fileno())
        except (OSError, ValueError):
            return str(getattr(self._raw, "name", "?"))

    def write(self, data: Any) -> int:
        self._on_op("write", self._path())
        return int(self._raw.write(data))

    def writelines(self, lines: Iterable[Any]) -> None:
        for line in lines:
            self.write(line)

    def __enter__(self) -> _CountedFile:
        self._raw.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._raw.__exit__(*exc)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _writable(mode: str) -> bool:
    return any(flag in mode for flag in "wax+")


def install(on_op: OnOp, kinds: Iterable[str] = DEFAULT_KINDS) -> Callable[[], None]:
    """Patch ``os``, ``io`` and ``builtins`` so that *on_op* runs before each counted operation
    of the given *kinds*; return the function that undoes the patches."""
    wanted = set(kinds)
    unknown = wanted - set(KINDS)
    if unknown:
        raise ValueError(f"unknown operation kinds: {', '.join(sorted(unknown))}")
    saved: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, new: object) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    if "write" in wanted:
        real_write, real_open = os.write, io.open

        def write(fd: int, data: Any) -> int:
            if fd not in _TERMINAL:
                on_op("write", fd_path(fd))
            return real_write(fd, data)

        def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            opened = real_open(file, mode, *args, **kwargs)
            if _writable(mode) and file not in _TERMINAL:
                return _CountedFile(opened, on_op)
            return opened

        patch(os, "write", write)
        patch(io, "open", open_)
        patch(builtins, "open", open_)
    if "fsync" in wanted:
        from common import fsio

        for name in ("fsync", "fdatasync"):
            patch(os, name, _before(on_op, "fsync", getattr(os, name), _synced_path))
        patch(fsio, "syncfs", _before(on_op, "fsync", fsio.syncfs, _synced_path))
    if "replace" in wanted:
        for name in ("replace", "rename"):
            patch(os, name, _before(on_op, "replace", getattr(os, name), _target_path))
    if "mkdir" in wanted:
        patch(os, "mkdir", _before(on_op, "mkdir", os.mkdir, _first_path))

    def undo() -> None:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)

    return undo


def _synced_path(args: tuple[Any, ...]) -> str:
    fd = args[0]
    return fd_path(fd if isinstance(fd, int) else fd.fileno())


def _target_path(args: tuple[Any, ...]) -> str:
    return str(os.fspath(args[1]))


def _first_path(args: tuple[Any, ...]) -> str:
    return str(os.fspath(args[0]))


def _before(
    on_op: OnOp, kind: str, real: Callable[..., Any], path_of: Callable[[tuple[Any, ...]], str]
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        on_op(kind, path_of(args))
        return real(*args, **kwargs)

    wrapper.__name__ = getattr(real, "__name__", kind)
    return wrapper


def run_app(app: str, args: list[str]) -> None:
    """Run ``courier`` or ``center`` in this process with *args* (after :func:`install`)."""
    import sys

    sys.argv = [app, *args]
    if app == "courier":
        from courier.cli.app import main as app_main
    elif app == "center":
        from center.cli.app import main as app_main
    else:
        raise SystemExit(f"unknown app {app}")
    app_main()
