"""Finding the courier drive among what is plugged into the laptop (udev, through pyudev).

:class:`UdevProbe` lists block devices from udev (sysfs and the udev database) and mount points
from ``/proc/self/mounts``; tests inject their own probe. A device counts as removable when
the kernel says so (``removable`` attribute of the disk), or it sits on USB, or it is an SD or
other flash card. ``--drive auto`` picks the one mounted removable drive that carries a courier
mark (``.courier-volume``), and refuses with a clear error when there is none or several.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from common.bundle import format as fmt
from common.errors import DriveAmbiguous, DriveError, DriveNotFound
from courier.core.sizes import format_bytes

SECTOR = 512  # sysfs reports sizes in 512-byte sectors whatever the device's own sector


@dataclass(frozen=True)
class BlockDevice:
    """One block device as udev describes it."""

    device: str
    model: str
    size_bytes: int
    removable: bool
    label: str = ""
    fs_type: str = ""


@dataclass(frozen=True)
class DriveInfo:
    """A removable drive: where it is mounted, how full, whether it is a courier drive."""

    device: str
    model: str
    size_bytes: int
    label: str
    mount_point: Path | None
    free_bytes: int | None
    courier: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "model": self.model,
            "size_bytes": self.size_bytes,
            "label": self.label,
            "mount_point": None if self.mount_point is None else str(self.mount_point),
            "free_bytes": self.free_bytes,
            "courier_drive": self.courier,
        }


class DriveProbe(Protocol):
    """Where the list of block devices and mounts comes from (udev, or a test's fixture)."""

    def block_devices(self) -> list[BlockDevice]: ...

    def mounts(self) -> str: ...


class UdevProbe:
    """The real laptop: pyudev and /proc/self/mounts."""

    def block_devices(self) -> list[BlockDevice]:
        try:
            import pyudev
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise DriveError("pyudev is not installed", hint="Give --drive PATH.") from exc
        try:
            devices = list(pyudev.Context().list_devices(subsystem="block"))
        except (OSError, pyudev.DeviceNotFoundError) as exc:
            raise DriveError(
                f"cannot list the laptop's drives through udev ({exc})",
                hint="Give the drive's mount point with --drive PATH.",
            ) from exc
        return [_from_udev(d) for d in devices if d.device_node]

    def mounts(self) -> str:
        try:
            return Path("/proc/self/mounts").read_text("utf-8")
        except OSError as exc:
            raise DriveError(f"cannot read the mount table ({exc.strerror})") from exc


def _from_udev(device: Any) -> BlockDevice:
    props = dict(device.properties)
    disk = device.find_parent("block", "disk") if device.device_type == "partition" else None
    if disk is None:
        disk = device
    removable = (
        _attribute(disk, "removable") == "1"
        or props.get("ID_BUS") == "usb"
        or props.get("ID_DRIVE_FLASH_SD") == "1"
        or props.get("ID_USB_DRIVER") == "usb-storage"
    )
    size = _attribute(device, "size")
    model = props.get("ID_MODEL") or _attribute(disk, "device/model") or ""
    return BlockDevice(
        device=str(device.device_node),
        model=model.replace("_", " ").strip(),
        size_bytes=int(size) * SECTOR if size.isdigit() else 0,
        removable=removable,
        label=props.get("ID_FS_LABEL", ""),
        fs_type=props.get("ID_FS_TYPE", ""),
    )


def _attribute(device: Any, name: str) -> str:
    try:
        value = device.attributes.get(name)
    except (KeyError, OSError):
        return ""
    if value is None:
        return ""
    return bytes(value).decode("utf-8", "replace").strip()


def parse_mounts(text: str) -> dict[str, list[Path]]:
    """Mount points by device from a ``/proc/self/mounts`` text (octal escapes decoded)."""
    result: dict[str, list[Path]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith("/dev/"):
            point = fields[1].encode().decode("unicode_escape")
            result.setdefault(fields[0], []).append(Path(point))
    return result


def list_drives(probe: DriveProbe) -> list[DriveInfo]:
    """The removable drives, mounted or not, with free space and courier mark."""
    mounts = parse_mounts(probe.mounts())
    drives = []
    for dev in probe.block_devices():
        if not dev.removable or dev.size_bytes == 0:
            continue
        points = mounts.get(dev.device, [])
        point = points[0] if points else None
        free = None
        courier = False
        if point is not None:
            try:
                free = shutil.disk_usage(point).free
                courier = (point / fmt.VOLUME_MARKER).is_file()
            except OSError:
                free = None
        drives.append(
            DriveInfo(dev.device, dev.model, dev.size_bytes, dev.label, point, free, courier)
        )
    return drives


def _describe(drives: Iterable[DriveInfo]) -> str:
    return "; ".join(
        f"{d.device} {d.model or 'drive'} {format_bytes(d.size_bytes)} "
        + (f"at {d.mount_point}" if d.mount_point else "not mounted")
        for d in drives
    )


def choose_auto(probe: DriveProbe) -> Path:
    """The mount point of the one inserted courier drive (``--drive auto``)."""
    drives = list_drives(probe)
    courier = [d for d in drives if d.courier and d.mount_point is not None]
    if len(courier) == 1 and courier[0].mount_point is not None:
        return courier[0].mount_point
    if len(courier) > 1:
        raise DriveAmbiguous(f"several courier drives are plugged in: {_describe(courier)}")
    if not drives:
        raise DriveNotFound("no removable drive is plugged in")
    mounted = [d for d in drives if d.mount_point is not None]
    if not mounted:
        raise DriveNotFound(
            f"no removable drive is mounted (plugged in: {_describe(drives)})",
            hint="Mount the courier drive (open it in the file manager), then run the command "
            "again, or give --drive PATH.",
        )
    raise DriveNotFound(
        f"none of the mounted removable drives is a courier drive ({_describe(mounted)})",
        hint="Prepare the drive with `courier drive init PATH` (or give --drive PATH).",
    )


def locate_drive(spec: str, probe: DriveProbe) -> Path:
    """The drive's mount point: *spec* itself, or for ``auto`` the one courier drive."""
    if spec.strip().lower() == "auto":
        return choose_auto(probe)
    return Path(spec).expanduser()
