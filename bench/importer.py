"""`center import` of the pulled bundle against Orthanc loading the same plaintext files.

The bundle is made once by a `courier pull` of the terminal (every study flagged A, so the
bundle holds every file of it). Each import run starts from a copy of the archive as it was
right after the courier's enrolment, with the drive's outbox cleared, and a cold page cache;
its figure includes the keyless verification, the courier-log check, decryption, hash and
header checks, the fsynced object store, the catalog transaction, the storage receipt and the
outbox push.

Baseline: a fresh Orthanc (Debian package, started as the tests start it: free ports on
127.0.0.1, its own network namespace where possible, storage in a new folder, default
``SyncStorageArea``: an fsync per stored file) loading the same files through its REST API
(``POST /instances``) with two concurrent uploads (bench/orthanc_upload.py), page cache cold.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench.harness import Measurement, drop_caches, measure, run_timed, tree_bytes
from bench.report import Row
from bench.setup import BIN, Workspace, bundle_drive, clear_drive_returns, fresh_archive

REPO = Path(__file__).resolve().parent.parent


def measure_import(ws: Workspace, term: Path, repeat: int, label: str) -> Measurement:
    drive = bundle_drive(ws, term, f"drive-{term.name}")
    total, count = tree_bytes(term)

    def prepare() -> None:
        fresh_archive(ws)
        clear_drive_returns(drive)

    result = measure(
        label,
        repeat,
        count,
        "instances",
        prepare,
        lambda: [str(BIN / "center"), "import", str(drive), "--json"],
        env=ws.env(),
    )
    result.data_bytes = total
    return result


def measure_orthanc(ws: Workspace, term: Path, repeat: int) -> Measurement | None:
    if shutil.which("Orthanc") is None:
        return None
    from tests.peers.orthanc import start_orthanc  # the tests' peer: same config, same care

    files = sorted(p for p in term.rglob("*") if p.is_file())
    listing = ws.root / "orthanc-files.txt"
    listing.write_text("".join(f"{p}\n" for p in files))
    result = Measurement("Orthanc REST, 2 uploads", units=len(files), unit_name="instances")
    for run in range(repeat):
        workdir = ws.root / "orthanc"
        shutil.rmtree(workdir, ignore_errors=True)
        peer = start_orthanc(workdir / f"run-{run}")
        try:
            drop_caches()
            argv = [sys.executable, "-m", "bench.orthanc_upload", peer.url, str(listing)]
            result.runs.append(run_timed(peer.command(argv), cwd=REPO))
            stored = peer.instance_count()
            if stored != len(files):
                raise RuntimeError(f"Orthanc stored {stored} of {len(files)} instances")
        finally:
            peer.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def bench_import(ws: Workspace, term: Path, repeat: int) -> list[Row]:
    total, count = tree_bytes(term)
    print(f"  bundle of {count} instances, {total / 1e9:.2f} GB")
    center = measure_import(ws, term, repeat, f"center import {total / 1e9:.1f} GB")
    orthanc = measure_orthanc(ws, term, repeat)
    if orthanc is None:
        return [Row(center, note="Orthanc is not installed: no baseline")]
    return [Row(center, orthanc, ">= 1.5 x Orthanc", minimum_ratio=1.5)]
