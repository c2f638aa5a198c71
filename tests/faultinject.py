"""Run `courier` or `center` in a child process with a fault at the Nth file operation.

Usage (from tests, as a subprocess)::

    python -m tests.faultinject N FAULT OPS APP [ARGS...]

FAULT is ``kill`` (SIGKILL itself: a crash, power cut or pulled drive as the process sees it),
``enospc`` or ``eio`` (the operation raises that OSError). OPS is a comma list among ``write``,
``fsync``, ``replace``, ``mkdir``: the operations counted, as tests/fileops.py defines them
(buffered writes and fdatasync included). The child prints nothing extra; its exit status tells
what happened (-9 for a kill). Nothing here is imported by product code.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

from tests import fileops


def _install(n: int, fault: str, kinds: set[str]) -> None:
    counter = {"n": 0}

    def on_op(kind: str, path: str) -> None:
        counter["n"] += 1
        if counter["n"] == n:
            if fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            code = errno.ENOSPC if fault == "enospc" else errno.EIO
            raise OSError(code, os.strerror(code))

    fileops.install(on_op, kinds)


def main(argv: list[str]) -> None:
    n, fault, ops, app, *rest = argv
    if fault not in ("kill", "enospc", "eio"):
        raise SystemExit(f"unknown fault {fault}")
    _install(int(n), fault, set(ops.split(",")))
    fileops.run_app(app, rest)


if __name__ == "__main__":
    main(sys.argv[1:])
