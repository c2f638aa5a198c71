"""`center export` to a folder: time per instance as a series grows (a file-set must stay linear).

    python -m bench.export [--instances 1000,4000] [--repeat 3] [--workdir DIR]

For each size, a synthetic terminal with one study of one series of that many instances is
pulled by a courier device and imported into a fresh archive (library calls, not timed), then
exported to a new folder ``--repeat`` times through :func:`center.core.export.export_studies`
(DICOMDIR written, every object checked, copied, read back and fsynced). Prints the median
seconds and instances per second. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from center.core.archive import init_archive, open_archive
from center.core.devices import enroll
from center.core.export import destination, export_studies
from center.core.importer import import_drive
from center.core.search import StudyQuery
from common.environment import Environment
from courier.core.device import CourierHome, init_device, load_device, unlock
from courier.core.drive import init_drive
from courier.core.facilities import Facility
from courier.core.pull import pull
from examples.clinic_terminal import TerminalSpec, generate_terminal

NOW = datetime(2026, 11, 22, tzinfo=UTC)
CENTER, ESCROW, COURIER = "bench-center-pass", "bench-escrow-pass", "bench-courier-pass"


def _archive(base: Path, instances: int) -> Path:
    """An archive holding one imported series of *instances* instances (facility bench-1)."""
    env = Environment(clock=lambda: NOW, kdf_log_n=10)
    root = base / "archive"
    init_archive(root, center_name="Bench", passphrase=CENTER, escrow_passphrase=ESCROW, env=env)
    home = CourierHome(base / "laptop")
    card = (root / "center-card.json").read_bytes()
    init_device(home, operator="Bench", center_card=card, passphrase=COURIER, env=env)
    spec = TerminalSpec(
        seed=9,
        patients=1,
        studies=1,
        series_per_study=(1, 1),
        instances_per_series=(instances, instances),
        pixel_bytes=4096,
        a_fraction=1.0,
    )
    generate_terminal(base / "terminal", spec)
    (base / "drive").mkdir()
    drive = init_drive(base / "drive")
    with open_archive(root) as archive:
        enroll(archive, home.device_card.read_bytes(), operator="bench", now=NOW)
        device = unlock(load_device(home), COURIER)
        settings = Facility("bench-1", "", str(base / "terminal"), receipts=None)
        pull(device, settings=settings, drive=drive, now=NOW)
        import_drive(archive, archive.unlock(CENTER), drive.root, operator="bench", now=NOW)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", default="1000,4000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("bench-data") / "export")
    args = parser.parse_args(argv)
    print(f"{'instances':>9} {'MB':>6} {'median s':>9} {'inst/s':>7}  (median of {args.repeat})")
    for instances in (int(n) for n in args.instances.split(",")):
        base = args.workdir / f"series-{instances}"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        root = _archive(base, instances)
        times, size = [], 0
        with open_archive(root) as archive:
            for run in range(args.repeat):
                target = destination(to=base / f"cd-{run}", encrypt_to=None, to_pacs=None)
                start = time.perf_counter()
                report = export_studies(
                    archive,
                    StudyQuery(facility="bench-1"),
                    to=target,
                    purpose="benchmark",
                    operator="bench",
                    now=NOW,
                )
                times.append(time.perf_counter() - start)
                size = report.bytes
        median = statistics.median(times)
        print(f"{instances:>9} {size / 1e6:>6.1f} {median:>9.2f} {instances / median:>7.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
