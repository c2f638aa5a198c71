"""`make bench`: throughput and memory of the hot paths against baselines of the same run.

    python -m bench.run [--size 1.2G] [--repeat 3] [--only pull,import,...] [--workdir DIR]

Prints one table: measurement, median seconds, rate, peak RSS, baseline, ratio, target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Measurement, fmt_rate, measure, tree_bytes
from bench.setup import BIN, Workspace, prepare_workspace, reset_courier_state, sized_terminal


@dataclass
class Row:
    measurement: Measurement
    baseline: Measurement | None = None
    target: str = ""
    minimum_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.rate:
            return None
        return self.measurement.rate / self.baseline.rate


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def _fresh(path: Path) -> Callable[[], None]:
    def prepare() -> None:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)

    return prepare


def bench_pull(ws: Workspace, term: Path, repeat: int) -> list[Row]:
    """`courier pull` (copy, read-back, seal) against `cp -r` + sync and `restic backup`."""
    total, count = tree_bytes(term)
    drive = ws.root / "drive"

    def prepare_pull() -> None:
        _fresh(drive)()
        reset_courier_state(ws)

    pull = measure(
        "courier pull",
        repeat,
        total,
        "bytes",
        prepare_pull,
        lambda: [
            str(BIN / "courier"),
            "pull",
            "bench-clinic",
            "--source",
            str(term),
            "--drive",
            str(drive),
            "--json",
        ],
        env=ws.env(),
    )
    copy_target = ws.root / "cp-target"
    cp = measure(
        "cp -r + sync",
        repeat,
        total,
        "bytes",
        _fresh(copy_target),
        lambda: ["sh", "-c", f'cp -r "{term}" "{copy_target}/t" && sync'],
    )
    rows = [Row(pull, cp, ">= 0.35 x cp", 0.35)]
    restic = shutil.which("restic")
    if restic:
        repo = ws.root / "restic-repo"
        env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(repo)}

        def prepare_restic() -> None:
            _fresh(repo)()
            shutil.rmtree(repo)
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
        rows.append(Row(pull, rb, ">= 2 x restic", 2.0))
    print(f"  pulled {count} files, {total / 1e9:.2f} GB")
    return rows


def render(rows: list[Row]) -> None:
    header = (
        f"{'measurement':<22}{'median s':>10}{'rate':>16}{'peak RSS':>11}  "
        f"{'baseline':<16}{'ratio':>7}  target"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        m = row.measurement
        base = row.baseline
        ratio = row.ratio
        verdict = ""
        if ratio is not None and row.minimum_ratio is not None:
            verdict = "ok" if ratio >= row.minimum_ratio else "MISSED"
        print(
            f"{m.name:<22}{m.median_seconds:>10.2f}{fmt_rate(m.rate, m.unit_name):>16}"
            f"{m.peak_rss_mib:>8.0f} MB  {(base.name if base else '-'):<16}"
            f"{(f'{ratio:.2f}' if ratio is not None else '-'):>7}  {row.target} {verdict}"
        )
        if base is not None:
            print(
                f"{'  ' + base.name:<22}{base.median_seconds:>10.2f}"
                f"{fmt_rate(base.rate, base.unit_name):>16}{base.peak_rss_mib:>8.0f} MB"
            )


BENCHES = {"pull": bench_pull}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="1.2G", help="terminal size for pull/import")
    parser.add_argument("--pixel-bytes", default="512K", help="pixel data per instance")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--workdir", type=Path, default=Path("bench-data"))
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    ws = prepare_workspace(workdir / "ws")
    term = sized_terminal(
        workdir, parse_size(args.size), parse_size(args.pixel_bytes), f"terminal-{args.size}"
    )
    rows: list[Row] = []
    for name in args.only.split(","):
        print(f"== {name}")
        rows += BENCHES[name](ws, term, args.repeat)
    print()
    render(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
