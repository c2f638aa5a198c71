"""Count (and name) the file operations tests/faultinject.py counts, for one CLI run.

Usage: ``python -m tests.courier.opcount OUT APP [ARGS...]`` writes one line per counted
operation to OUT (``<n> <op> <path>``), in the order tests/faultinject.py numbers them
(tests/fileops.py), so a crash test can choose kill points in the copy and in the seal.
Nothing here is product code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests import fileops


def main(argv: list[str]) -> None:
    out, app, *rest = argv
    trace: list[str] = []

    def note(op: str, path: str) -> None:
        trace.append(f"{len(trace) + 1} {op} {path}")

    undo = fileops.install(note)
    try:
        fileops.run_app(app, rest)
    finally:
        undo()
        Path(out).write_text("".join(f"{line}\n" for line in trace))


if __name__ == "__main__":
    main(sys.argv[1:])
