"""Count (and name) the file operations tests/faultinject.py counts, for one CLI run.

Usage: ``python -m tests.courier.opcount OUT APP [ARGS...]`` writes one line per counted
operation to OUT (``<n> <op> <path>``), in the order tests/faultinject.py numbers them, so a
crash test can choose kill points in the copy and in the seal. Nothing here is product code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _fd_path(fd: int) -> str:
    try:
        return str(Path(f"/proc/self/fd/{fd}").readlink())
    except OSError:
        return "?"


def main(argv: list[str]) -> None:
    out, app, *rest = argv
    trace: list[str] = []
    real_write, real_fsync = os.write, os.fsync
    real_replace, real_rename = os.replace, os.rename

    def note(op: str, path: str) -> None:
        trace.append(f"{len(trace) + 1} {op} {path}")

    def write(fd: int, data: Any) -> int:
        if fd not in (0, 1, 2):
            note("write", _fd_path(fd))
        return real_write(fd, data)

    def fsync(fd: Any) -> None:
        note("fsync", _fd_path(fd if isinstance(fd, int) else fd.fileno()))
        real_fsync(fd)

    def wrap(op: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            note(op, os.fspath(dst))
            return real(src, dst, *args, **kwargs)

        return wrapper

    os.write, os.fsync = write, fsync  # type: ignore[assignment]
    os.replace, os.rename = wrap("replace", real_replace), wrap("rename", real_rename)  # type: ignore[assignment]
    sys.argv = [app, *rest]
    from courier.cli.app import main as app_main

    try:
        app_main()
    finally:
        Path(out).write_text("".join(f"{line}\n" for line in trace))


if __name__ == "__main__":
    main(sys.argv[1:])
