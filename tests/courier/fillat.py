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

from tests import fileops

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
    real_write = os.write

    def tick(kind: str, path: str) -> None:
        counter["n"] += 1
        if counter["n"] == target:
            _fill(ballast, real_write)

    fileops.install(tick)
    fileops.run_app(app, rest)


if __name__ == "__main__":
    main(sys.argv[1:])
