"""Two visits of one courier: bundle 1 on drive A, bundle 2 on drive B (real courier code)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.importer import ImportReport, import_drive
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive, init_drive
from courier.core.release import release_bundle
from examples.clinic_terminal import TerminalSpec, generate_terminal
from tests.conftest import NOW
from tests.helpers import do_pull


def _spec(seed: int) -> TerminalSpec:
    return TerminalSpec(seed=seed, patients=1, studies=2, pixel_bytes=256, a_fraction=1.0)


@dataclass
class Visits:
    """The drives and bundle ids of two visits, and the device's log position of bundle 1."""

    first: Drive
    second: Drive
    bundle1: str
    bundle2: str
    bundle1_seq: int

    def import_(self, archive: Archive, keys: CenterKeys, drive: Drive) -> ImportReport:
        return import_drive(archive, keys, drive.root, operator="Importer", now=NOW)


def _visits(device: UnlockedDevice, tmp_path: Path, *, release_first: bool) -> Visits:
    terminal = tmp_path / "terminal"
    generate_terminal(terminal / "a", _spec(5))
    drives = []
    for name in ("A", "B"):
        (tmp_path / name).mkdir()
        drives.append(init_drive(tmp_path / name))
    one = do_pull(device, drives[0], terminal)
    assert one.bundle_id is not None
    if release_first:
        release_bundle(device, one.bundle_id, reason="drive lost in transit", now=NOW)
    else:
        generate_terminal(terminal / "b", _spec(6))
    two = do_pull(device, drives[1], terminal)
    assert two.bundle_id is not None
    seq = device_log_seq(device, one.bundle_id)
    return Visits(drives[0], drives[1], one.bundle_id, two.bundle_id, seq)


def device_log_seq(device: UnlockedDevice, bundle_id: str) -> int:
    """The courier log position of a bundle's visit, from the courier's own journal."""
    from common.sqlitedb import connect

    conn = connect(device.device.home.journal)
    try:
        row = conn.execute("SELECT log_seq FROM bundles WHERE bundle_id = ?", (bundle_id,))
        return int(row.fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def visits(device: UnlockedDevice, tmp_path: Path) -> Visits:
    """Bundle 1 of clinic A's first studies on drive A, bundle 2 of new studies on drive B."""
    return _visits(device, tmp_path, release_first=False)


@pytest.fixture
def released_visits(device: UnlockedDevice, tmp_path: Path) -> Visits:
    """Bundle 1 on drive A released as lost; bundle 2 carries its studies again on drive B."""
    return _visits(device, tmp_path, release_first=True)


@pytest.fixture
def released_later(device: UnlockedDevice, tmp_path: Path) -> Visits:
    """Bundles 1 (drive A) and 2 (drive B), then bundle 1 released as lost and its studies
    carried again in bundle 3 on drive B, whose log brings the release (and its position)."""
    visits = _visits(device, tmp_path, release_first=False)
    release_bundle(device, visits.bundle1, reason="drive lost in transit", now=NOW)
    three = do_pull(device, visits.second, tmp_path / "terminal")
    assert three.bundle_id is not None
    return visits
