"""Run `courier` or `center` in a child process with a fault at the Nth file operation.

Usage (from tests, as a subprocess)::

    python -m tests.faultinject N FAULT OPS APP [ARGS...]

FAULT is ``kill`` (SIGKILL itself: a crash, power cut or pulled drive as the process sees it),
``enospc`` or ``eio`` (the operation raises that OSError). OPS is a comma list among ``write``,
``fsync``, ``replace``, ``mkdir``: the operations counted. The child prints nothing extra; its
exit status tells what happened (-9 for a kill). Nothing here is imported by product code.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def _install(n: int, fault: str, ops: set[str]) -> None:
    counter = {"n": 0}

    def wrap(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counter["n"] += 1
            if counter["n"] == n:
                if fault == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                code = errno.ENOSPC if fault == "enospc" else errno.EIO
                raise OSError(code, os.strerror(code))
            return real(*args, **kwargs)

        wrapper.__name__ = name
        return wrapper

    if "write" in ops:
        real_write = os.write

        def guarded_write(fd: int, data: Any) -> int:
            if fd in (0, 1, 2):  # the terminal is not the disk under test
                return real_write(fd, data)
            return wrapped_write(fd, data)

        wrapped_write = wrap("write", real_write)
        os.write = guarded_write
    if "fsync" in ops:
        os.fsync = wrap("fsync", os.fsync)
    if "replace" in ops:
        os.replace = wrap("replace", os.replace)
        os.rename = wrap("rename", os.rename)
    if "mkdir" in ops:
        os.mkdir = wrap("mkdir", os.mkdir)


def main(argv: list[str]) -> None:
    n, fault, ops, app, *rest = argv
    if fault not in ("kill", "enospc", "eio"):
        raise SystemExit(f"unknown fault {fault}")
    _install(int(n), fault, set(ops.split(",")))
    sys.argv = [app, *rest]
    if app == "courier":
        from courier.cli.app import main as app_main
    elif app == "center":
        from center.cli.app import main as app_main
    else:
        raise SystemExit(f"unknown app {app}")
    app_main()


if __name__ == "__main__":
    main(sys.argv[1:])
