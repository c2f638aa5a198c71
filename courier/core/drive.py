"""The removable drive (or any folder standing in for one).

A courier drive carries a ``.courier-volume`` file with a random volume id, so the journal can
recognise the drive again after it is re-plugged under another mount point.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from common.bundle import format as fmt
from common.errors import DriveError, DriveFull
from common.fsio import TEMP_SUFFIX, atomic_write, fsync_dir


@dataclass(frozen=True)
class Drive:
    root: Path
    volume_id: str

    @property
    def bundles(self) -> Path:
        return self.root / fmt.BUNDLES_DIR

    def outbox(self, facility_id: str) -> Path:
        return self.root / fmt.OUTBOX_DIR / facility_id

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def block_size(self) -> int:
        """The file system's allocation unit: a file occupies a whole number of them."""
        try:
            return max(os.statvfs(self.root).f_frsize, 512)
        except OSError:
            return 4096


def init_drive(root: Path) -> Drive:
    """Mark *root* as a courier drive (idempotent: an existing marker is kept)."""
    if not root.is_dir():
        raise DriveError(f"{root} is not a mounted drive or folder")
    marker = root / fmt.VOLUME_MARKER
    try:
        for stale in root.glob(f".{fmt.VOLUME_MARKER}.*{TEMP_SUFFIX}"):  # an interrupted init
            stale.unlink()
        if not marker.exists():
            if not os.access(root, os.W_OK):
                raise DriveError(
                    f"{root} is read-only", hint="Unlock or remount the drive writable."
                )
            atomic_write(marker, f"courier-volume {secrets.token_hex(16)}\n".encode())
        drive = open_drive(root)
        drive.bundles.mkdir(exist_ok=True)
        fsync_dir(root)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DriveFull(
                f"the drive {root} is full", hint="Free space on the drive or use another one."
            ) from exc
        raise DriveError(
            f"preparing the drive {root} failed: {exc.strerror or exc}",
            hint="Check that the drive is plugged in, mounted and writable, then run the "
            "command again.",
        ) from exc
    return drive


def open_drive(root: Path) -> Drive:
    """Open a drive already marked with :func:`init_drive`."""
    marker = root / fmt.VOLUME_MARKER
    try:
        text = marker.read_text("ascii").split()
    except FileNotFoundError as exc:
        raise DriveError(
            f"{root} is not a courier drive (no {fmt.VOLUME_MARKER})",
            hint=f"Run `courier drive init {root}` to prepare it.",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DriveError(f"cannot read {marker}: {exc}") from exc
    if len(text) != 2 or text[0] != "courier-volume":
        raise DriveError(f"{marker} is damaged", hint="Re-initialise the drive after saving it.")
    return Drive(root, text[1])
