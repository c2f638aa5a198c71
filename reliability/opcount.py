"""List the file operations tests/faultinject.py counts, for one `courier` or `center` run.

Usage (a child process): ``python -m reliability.opcount OUT APP [ARGS...]`` writes one line per
counted operation to OUT (``<op> <path>``) in the order tests/faultinject.py numbers them (both
use tests/fileops.py), so the harness knows how many writes, fsyncs and renames a run makes and
where they go.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests import fileops


def main(argv: list[str]) -> None:
    out, app, *rest = argv
    trace: list[str] = []
    undo = fileops.install(lambda kind, path: trace.append(f"{kind} {path}"))
    try:
        fileops.run_app(app, rest)
    finally:
        undo()
        Path(out).write_text("".join(f"{line}\n" for line in trace))


if __name__ == "__main__":
    main(sys.argv[1:])
