"""Peak memory of `courier pull` and `center import` at two data sizes (1.2 GB and 4 GB).

The figures are the child's own peak RSS (``wait4``) and the sampled peak of its whole
process tree (summed PSS, worker processes included). Memory must stay under the limit and
must not grow with the size of the data: everything is streamed.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import Measurement
from bench.importer import measure_import
from bench.pull import measure_pull
from bench.report import MemoryRow
from bench.setup import Workspace


def bench_memory(
    ws: Workspace,
    small: Path,
    large: Path,
    repeat: int,
    measured: dict[str, Measurement],
) -> list[MemoryRow]:
    """*measured* holds the small-size runs already made by the pull and import rows."""
    pull_small = measured.get("pull") or measure_pull(ws, small, repeat, "courier pull")
    pull_large = measure_pull(ws, large, 1, "courier pull (large)")
    import_small = measured.get("import") or measure_import(ws, small, repeat, "center import")
    import_large = measure_import(ws, large, 1, "center import (large)")
    return [
        MemoryRow("courier pull", pull_small, pull_large),
        MemoryRow("center import", import_small, import_large),
    ]
