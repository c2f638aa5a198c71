"""`courier scan` of a terminal of small instances: the first scan against `dcmdump`, the
re-scan of the unchanged terminal against a bare directory walk with stat.

* First scan: the courier's journal is removed before each run, so every header is parsed.
  Baseline: dcmtk's `dcmdump` over the same files, one process per batch of files (`find ...
  -print0 | xargs -0 dcmdump -q -M +F`: xargs' default batches of about 128 KiB of
  arguments, a few thousand files each), long values such as pixel data not loaded (-M, as
  the courier stops before the pixel data), output to /dev/null. Starting one dcmdump per
  file would measure process start-up, not parsing; this is the fair, fast way to run it.
* Re-scan: the same command again on the journal the first scan filled (the files are
  unchanged), against `find -type f -printf '%s %T@'` (a walk that stats every file, in C),
  both from a cold page cache (directories and inodes read from the disk) and from a warm one
  (a scan right before a pull). The courier's figure includes Python's start-up, the device
  unlock and opening the journal; a scan of an empty folder measures that fixed cost, and the
  rate net of it is printed too.

Every other run starts from a cold page cache.

The project's modules are byte-compiled before anything is measured (bench/setup.py,
``byte_compile_project``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.harness import measure
from bench.report import Row
from bench.setup import BIN, Workspace, reset_courier_state


def _scan_argv(facility: str, term: Path) -> list[str]:
    return [str(BIN / "courier"), "scan", facility, "--source", str(term), "--json"]


def _count(term: Path) -> int:
    return sum(1 for p in term.rglob("*") if p.is_file())


def bench_scan(ws: Workspace, term: Path, repeat: int) -> list[Row]:
    files = _count(term)
    print(f"  terminal: {files} files")
    first = measure(
        f"courier scan, first ({files // 1000}k)",
        repeat,
        files,
        "files",
        lambda: reset_courier_state(ws),
        lambda: _scan_argv("bench-small", term),
        env=ws.env(),
    )
    dcmdump = shutil.which("dcmdump")
    rows = []
    if dcmdump:
        base = measure(
            "dcmdump (xargs batches)",
            repeat,
            files,
            "files",
            lambda: None,
            lambda: [
                "sh",
                "-c",
                f'find "{term}" -type f -print0 | xargs -0 "{dcmdump}" -q -M +F > /dev/null',
            ],
        )
        rows.append(Row(first, base, ">= 0.5 x dcmdump", minimum_ratio=0.5))
    else:
        rows.append(Row(first, note="dcmdump (dcmtk) is not installed: no baseline"))
    rows.append(_rescan_row(ws, term, files, repeat, cold=True))
    rows.append(_rescan_row(ws, term, files, repeat, cold=False))
    return rows


def _rescan_row(ws: Workspace, term: Path, files: int, repeat: int, *, cold: bool) -> Row:
    cache = "cold" if cold else "warm"
    rescan = measure(
        f"courier re-scan ({files // 1000}k), {cache}",
        repeat,
        files,
        "files",
        lambda: None,
        lambda: _scan_argv("bench-small", term),
        env=ws.env(),
        cold=cold,
    )
    walk = measure(
        f"find -printf size, mtime, {cache}",
        repeat,
        files,
        "files",
        lambda: None,
        lambda: ["sh", "-c", f"find \"{term}\" -type f -printf '%s %T@\\n' > /dev/null"],
        cold=cold,
    )
    empty = ws.root / "empty-terminal"
    empty.mkdir(exist_ok=True)
    noop = measure(
        "courier scan, empty folder",
        repeat,
        1,
        "runs",
        lambda: None,
        lambda: _scan_argv("bench-empty", empty),
        env=ws.env(),
        cold=cold,
    )
    net = rescan.median_seconds - noop.median_seconds
    note = (
        f"fixed cost (scan of an empty folder: start-up, unlock, journal) {noop.median_seconds:.2f}"
        f" s; net of it the re-scan walks {files / net:,.0f} files/s"
        if net > 0
        else "the re-scan took no longer than the scan of an empty folder"
    )
    return Row(rescan, walk, ">= 50,000 files/s", minimum_rate=50_000, note=note)
