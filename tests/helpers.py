"""Small helpers shared by tests (not fixtures)."""

from __future__ import annotations

from pathlib import Path

from common.bundle import format as fmt
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.facilities import Facility
from courier.core.pull import PullResult, pull
from tests.conftest import NOW


def do_pull(
    device: UnlockedDevice,
    drive: Drive,
    terminal_root: Path,
    receipts: Path | None = None,
    facility: str = "clinic-1",
) -> PullResult:
    settings = Facility(
        facility, "", str(terminal_root), receipts=None if receipts is None else str(receipts)
    )
    return pull(device, settings=settings, drive=drive, now=NOW)


def bundle_dir(drive: Drive, result: PullResult) -> Path:
    assert result.bundle_id is not None
    return drive.bundles / result.bundle_id


def first_object(bundle: Path) -> Path:
    return bundle / fmt.object_relpath(1)
