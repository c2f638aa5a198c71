"""`courier pull` (copy, read-back, seal) against `cp -r` + `sync` and `restic backup`.

All three read the same terminal (every study flagged A, so the pull carries every file) from a
cold page cache and write to the same disk; the pull's figure includes its planning, the
encryption, the read-back of every object from the device and the sealing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench.harness import Measurement, measure, tree_bytes
from bench.report import Row
from bench.setup import BIN, Workspace, reset_courier_state


def fresh(path: Path) -> Callable[[], None]:
    def prepare() -> None:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)

    return prepare


def pull_argv(term: Path, drive: Path) -> list[str]:
    return [
        str(BIN / "courier"),
        "pull",
        "bench-clinic",
        "--source",
        str(term),
        "--drive",
        str(drive),
        "--json",
    ]


def measure_pull(
    ws: Workspace, term: Path, repeat: int, label: str = "courier pull"
) -> Measurement:
    total, _count = tree_bytes(term)
    drive = ws.root / "drive"

    def prepare() -> None:
        fresh(drive)()
        reset_courier_state(ws)

    result = measure(
        label, repeat, total, "bytes", prepare, lambda: pull_argv(term, drive), env=ws.env()
    )
    result.data_bytes = total
    return result


def bench_pull(ws: Workspace, term: Path, repeat: int) -> list[Row]:
    total, count = tree_bytes(term)
    print(f"  terminal: {count} files, {total / 1e9:.2f} GB")
    pull = measure_pull(ws, term, repeat, f"courier pull {total / 1e9:.1f} GB")
    copy_target = ws.root / "cp-target"
    cp = measure(
        "cp -r + sync",
        repeat,
        total,
        "bytes",
        fresh(copy_target),
        lambda: ["sh", "-c", f'cp -r "{term}" "{copy_target}/t" && sync'],
    )
    shutil.rmtree(copy_target, ignore_errors=True)
    rows = [Row(pull, cp, ">= 0.35 x cp", minimum_ratio=0.35)]
    restic = shutil.which("restic")
    if restic:
        repo = ws.root / "restic-repo"
        env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(repo)}

        def prepare_restic() -> None:
            shutil.rmtree(repo, ignore_errors=True)
            subprocess.run([restic, "init", "-q"], env=env, check=True)

        rb = measure(
            "restic backup",
            repeat,
            total,
            "bytes",
            prepare_restic,
            lambda: [restic, "backup", "-q", str(term)],
            env=env,
        )
        shutil.rmtree(repo, ignore_errors=True)
        rows.append(Row(pull, rb, ">= 2 x restic", minimum_ratio=2.0))
    else:
        print("  restic is not installed: that baseline is left out")
    return rows
