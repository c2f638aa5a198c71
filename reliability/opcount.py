"""List the file operations tests/faultinject.py counts, for one `courier` or `center` run.

Usage (a child process): ``python -m reliability.opcount OUT APP [ARGS...]`` writes one line per
counted operation to OUT (``<op> <path>``) in the order tests/faultinject.py numbers them, so
the harness knows how many writes, fsyncs and renames a run makes and where they go.
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
    real_replace, real_rename, real_mkdir = os.replace, os.rename, os.mkdir

    def write(fd: int, data: Any) -> int:
        if fd not in (0, 1, 2):  # as tests/faultinject.py: the terminal is not counted
            trace.append(f"write {_fd_path(fd)}")
        return real_write(fd, data)

    def fsync(fd: Any) -> None:
        trace.append(f"fsync {_fd_path(fd if isinstance(fd, int) else fd.fileno())}")
        real_fsync(fd)

    def renaming(op: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            trace.append(f"{op} {os.fspath(dst)}")
            return real(src, dst, *args, **kwargs)

        return wrapper

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        trace.append(f"mkdir {os.fspath(path)}")
        real_mkdir(path, *args, **kwargs)

    os.write, os.fsync, os.mkdir = write, fsync, mkdir
    os.replace = renaming("replace", real_replace)
    os.rename = renaming("replace", real_rename)
    sys.argv = [app, *rest]
    if app == "courier":
        from courier.cli.app import main as app_main
    else:
        from center.cli.app import main as app_main
    try:
        app_main()
    finally:
        Path(out).write_text("".join(f"{line}\n" for line in trace))


if __name__ == "__main__":
    main(sys.argv[1:])
