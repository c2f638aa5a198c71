"""`make bench`: throughput and memory of the hot paths against baselines of the same run.

    python -m bench.run [--size 1.2G] [--large-size 4G] [--scan-files 20000] [--repeat 3]
                        [--only limits,pull,scan,import,search,memory] [--workdir bench-data]

Builds its data sets with the examples generator (cached in --workdir), runs each measurement
--repeat times from a cold page cache, and prints one table: median time, rate, peak RSS of
the command and of its process tree, ratio to the baseline measured in the same run on the
same files, and the target with its verdict; then the memory table (1.2 GB against 4 GB).
Never part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

from bench.harness import Measurement
from bench.importer import bench_import
from bench.limits import cpu_rows, disk_rows, pull_floor_row
from bench.memory import bench_memory
from bench.pull import bench_pull
from bench.report import MemoryRow, Row, render, render_memory
from bench.scan import bench_scan
from bench.search import bench_search
from bench.setup import byte_compile_project, prepare_workspace, sized_terminal, small_terminal

BENCHES = ("limits", "pull", "scan", "import", "search", "memory")


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def machine() -> str:
    """One line describing where the figures come from."""
    load = os.getloadavg()
    disk = subprocess.run(["df", "-h", "--output=source,fstype", "."], capture_output=True)
    device = " ".join(disk.stdout.decode().splitlines()[-1].split()) if disk.returncode == 0 else ""
    return (
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, disk {device}, "
        f"load average {load[0]:.2f} at start"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1.2G", help="terminal size for pull and import")
    parser.add_argument("--large-size", default="4G", help="second size for the memory table")
    parser.add_argument("--pixel-bytes", default="512K", help="pixel data per instance")
    parser.add_argument("--scan-files", type=int, default=20_000, help="small-instance terminal")
    parser.add_argument("--search-studies", type=int, default=200_000)
    parser.add_argument("--search-instances", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset")
    parser.add_argument("--workdir", type=Path, default=Path("bench-data"))
    args = parser.parse_args(argv)
    wanted = args.only.split(",")
    unknown = set(wanted) - set(BENCHES)
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(sorted(unknown))}")
    workdir = args.workdir.resolve()
    print(machine())
    byte_compile_project()
    ws = prepare_workspace(workdir / "ws")
    pixel = parse_size(args.pixel_bytes)
    term = sized_terminal(workdir, parse_size(args.size), pixel, f"terminal-{args.size}")
    rows: list[Row] = []
    memory: list[MemoryRow] = []
    measured: dict[str, Measurement] = {}
    for name in wanted:
        print(f"== {name}", flush=True)
        if name == "limits":
            rows += cpu_rows() + disk_rows(workdir, args.repeat)
        elif name == "pull":
            pull_rows = bench_pull(ws, term, args.repeat)
            rows += pull_rows
            measured["pull"] = pull_rows[0].measurement
            restic = next((r.baseline for r in pull_rows if r.minimum_ratio == 2.0), None)
            rows.append(pull_floor_row(workdir, term, args.repeat, restic))
        elif name == "scan":
            rows += bench_scan(ws, small_terminal(workdir, args.scan_files), args.repeat)
        elif name == "import":
            rows += bench_import(ws, term, args.repeat)
            measured["import"] = rows[-1].measurement
        elif name == "search":
            rows += bench_search(
                workdir / "search", args.repeat, args.search_studies, args.search_instances
            )
        elif name == "memory":
            large = sized_terminal(
                workdir, parse_size(args.large_size), pixel, f"terminal-{args.large_size}"
            )
            memory += bench_memory(ws, term, large, args.repeat, measured)
    print()
    render(rows)
    render_memory(memory)
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.2f} (the benchmark's own commands,"
        " with their threads, count in it)"
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
