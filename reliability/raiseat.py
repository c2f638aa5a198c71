"""Run `courier` or `center` with an unexpected exception at its Nth file operation.

Usage (a child process): ``python -m reliability.raiseat N APP [ARGS...]``. The Nth write, fsync
or rename (counted as tests/faultinject.py counts them: tests/fileops.py) raises a RuntimeError,
which no code expects: the command ends as an internal error, and with ``--debug`` prints its
traceback. The leak scenario reads that traceback for patient data and key material.
"""

from __future__ import annotations

import sys

from tests import fileops

MESSAGE = "injected by the reliability suite"


def _install(n: int) -> None:
    counter = [0]

    def on_op(kind: str, path: str) -> None:
        counter[0] += 1
        if counter[0] == n:
            raise RuntimeError(MESSAGE)

    fileops.install(on_op)


def main(argv: list[str]) -> None:
    n, app, *rest = argv
    _install(int(n))
    fileops.run_app(app, rest)


if __name__ == "__main__":
    main(sys.argv[1:])
