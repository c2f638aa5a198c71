"""Fill the drive for real at the Nth counted file operation of a CLI run, then carry on.

Usage: ``python -m tests.courier.fillat N BALLAST APP [ARGS...]``. At operation N (numbered as
tests/faultinject.py numbers them) the file BALLAST, on the drive, is grown until the file
system answers ENOSPC; the command then continues and meets a genuinely full disk. A test can
thus fill a small real file system (tmpfs) in the middle of a copy without timing tricks.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import Any

_CHUNK = b"\0" * (64 << 10)


def _fill(path: str, write: Callable[[int, bytes], int]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        chunk = _CHUNK
        while chunk:
            try:
                write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)


def main(argv: list[str]) -> None:
    n, ballast, app, *rest = argv
    target = int(n)
    counter = {"n": 0}
    real_write, real_fsync = os.write, os.fsync
    real_replace, real_rename = os.replace, os.rename

    def tick() -> None:
        counter["n"] += 1
        if counter["n"] == target:
            _fill(ballast, real_write)

    def write(fd: int, data: Any) -> int:
        if fd not in (0, 1, 2):
            tick()
        return real_write(fd, data)

    def wrap(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tick()
            return real(*args, **kwargs)

        return wrapper

    os.write = write
    os.fsync = wrap(real_fsync)
    os.replace, os.rename = wrap(real_replace), wrap(real_rename)
    sys.argv = [app, *rest]
    from courier.cli.app import main as app_main

    app_main()


if __name__ == "__main__":
    main(sys.argv[1:])
