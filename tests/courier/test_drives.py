"""Finding the courier drive: udev's device list is injected (no real USB here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common.errors import DriveAmbiguous, DriveNotFound
from courier.cli import app as app_module
from courier.core.drive import init_drive
from courier.core.drives import BlockDevice, UdevProbe, choose_auto, list_drives, parse_mounts


@dataclass
class FakeProbe:
    devices: list[BlockDevice]
    mounted: dict[str, Path] = field(default_factory=dict)

    def block_devices(self) -> list[BlockDevice]:
        return self.devices

    def mounts(self) -> str:
        lines = ["/dev/vda1 / ext4 rw 0 0", "proc /proc proc rw 0 0"]
        lines += [
            f"{dev} {str(point).replace(' ', chr(92) + '040')} vfat rw 0 0"
            for dev, point in self.mounted.items()
        ]
        return "\n".join(lines) + "\n"


USB = BlockDevice("/dev/sdb1", "SanDisk Ultra", 64_000_000_000, removable=True, label="COURIER")
USB2 = BlockDevice("/dev/sdc1", "Kingston", 32_000_000_000, removable=True)
INTERNAL = BlockDevice("/dev/vda1", "virtio", 500_000_000_000, removable=False)


def test_mount_table_escapes_are_decoded() -> None:
    """Mount points with spaces (written \\040 by the kernel) are read back."""
    mounts = parse_mounts("/dev/sdb1 /media/alex/MY\\040DRIVE vfat rw 0 0\n")
    assert mounts == {"/dev/sdb1": [Path("/media/alex/MY DRIVE")]}


def test_only_removable_drives_are_listed(tmp_path: Path) -> None:
    """The laptop's internal disk is never offered; a mounted courier drive is marked."""
    init_drive(tmp_path)
    drives = list_drives(FakeProbe([INTERNAL, USB], {"/dev/sdb1": tmp_path}))
    assert [(d.device, d.courier, d.mount_point) for d in drives] == [("/dev/sdb1", True, tmp_path)]
    assert drives[0].free_bytes is not None and drives[0].model == "SanDisk Ultra"


def test_auto_picks_the_one_courier_drive(tmp_path: Path) -> None:
    """With one courier drive and one other drive mounted, auto picks the courier drive."""
    courier, other = tmp_path / "with space", tmp_path / "other"
    courier.mkdir(), other.mkdir()
    init_drive(courier)
    probe = FakeProbe([USB, USB2], {"/dev/sdb1": courier, "/dev/sdc1": other})
    assert choose_auto(probe) == courier


def test_auto_refuses_several_courier_drives(tmp_path: Path) -> None:
    """Two courier drives plugged in: auto refuses and names both."""
    first, second = tmp_path / "a", tmp_path / "b"
    for path in (first, second):
        path.mkdir()
        init_drive(path)
    probe = FakeProbe([USB, USB2], {"/dev/sdb1": first, "/dev/sdc1": second})
    with pytest.raises(DriveAmbiguous, match=r"sdb1.*sdc1"):
        choose_auto(probe)


@pytest.mark.parametrize(
    ("devices", "mounted", "message"),
    [
        ([INTERNAL], {}, "no removable drive is plugged in"),
        ([USB], {}, "no removable drive is mounted"),
        ([USB], {"/dev/sdb1": None}, "none of the mounted removable drives is a courier drive"),
    ],
)
def test_auto_without_a_courier_drive_says_why(
    tmp_path: Path, devices: list[BlockDevice], mounted: dict[str, Path | None], message: str
) -> None:
    """No drive, no mounted drive, or no courier mark: each is said plainly."""
    points = {dev: (tmp_path if point is None else point) for dev, point in mounted.items()}
    with pytest.raises(DriveNotFound, match=message):
        choose_auto(FakeProbe(devices, points))


def test_udev_probe_reads_this_machine() -> None:
    """The real probe lists this machine's block devices through pyudev without failing."""
    devices = UdevProbe().block_devices()
    assert all(d.device.startswith("/dev/") for d in devices)
    assert "/" in {str(p) for points in parse_mounts(UdevProbe().mounts()).values() for p in points}


def test_drives_command_lists_injected_devices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`courier drives --json` shows the injected udev devices as a script reads them."""
    init_drive(tmp_path)
    monkeypatch.setattr(
        app_module, "drive_probe", lambda: FakeProbe([USB], {"/dev/sdb1": tmp_path})
    )
    result = CliRunner().invoke(
        app_module.app, ["--home", str(tmp_path / "home"), "drives", "--json"]
    )
    assert result.exit_code == 0, result.output
    [drive] = json.loads(result.stdout)
    assert drive["device"] == "/dev/sdb1" and drive["courier_drive"] is True
    assert drive["mount_point"] == str(tmp_path) and drive["size_bytes"] == 64_000_000_000
