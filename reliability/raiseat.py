"""Run `courier` or `center` with an unexpected exception at its Nth file operation.

Usage (a child process): ``python -m reliability.raiseat N APP [ARGS...]``. The Nth write, fsync
or rename (counted as tests/faultinject.py counts them) raises a RuntimeError, which no code
expects: the command ends as an internal error, and with ``--debug`` prints its traceback. The
leak scenario reads that traceback for patient data and key material.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

MESSAGE = "injected by the reliability suite"


def _install(n: int) -> None:
    counter = [0]

    def wrap(real: Callable[..., Any], *, skip_terminal: bool = False) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not (skip_terminal and args and args[0] in (0, 1, 2)):
                counter[0] += 1
                if counter[0] == n:
                    raise RuntimeError(MESSAGE)
            return real(*args, **kwargs)

        return wrapper

    os.write = wrap(os.write, skip_terminal=True)
    os.fsync = wrap(os.fsync)
    os.replace = wrap(os.replace)
    os.rename = wrap(os.rename)


def main(argv: list[str]) -> None:
    n, app, *rest = argv
    _install(int(n))
    sys.argv = [app, *rest]
    if app == "courier":
        from courier.cli.app import main as app_main
    else:
        from center.cli.app import main as app_main
    app_main()


if __name__ == "__main__":
    main(sys.argv[1:])
