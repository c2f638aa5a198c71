"""Disk errors the reliability suite (reliability/iofaults.py) found ending as internal errors.

Each failed write, fsync or rename of the courier must end in a domain error the operator can
act on, or be absorbed without losing anything: never "internal error".
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from center.core.archive import CenterKeys
from common.bundle.writer import BundleWriter
from common.crypto import recipient_of
from common.errors import DriveError, DriveFull
from courier.core import drive as drive_module
from courier.core import reception
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive, init_drive
from courier.core.pull import pull
from tests.conftest import NOW, Terminal
from tests.courier.conftest import put_in_outbox, settings, storage_receipt


def _failing(code: int) -> Any:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, "injected")

    return fail


@pytest.mark.parametrize(("code", "error"), [(errno.EIO, DriveError), (errno.ENOSPC, DriveFull)])
def test_drive_init_failing_to_write_its_marker_is_a_drive_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, error: type[Exception]
) -> None:
    """A failed write of the volume marker is drive-unusable (or drive-full), not a crash."""
    monkeypatch.setattr(drive_module, "atomic_write", _failing(code))
    with pytest.raises(error, match="drive"):
        init_drive(tmp_path)


def test_pull_failing_to_create_the_bundle_folder_is_a_drive_error(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An I/O error creating the bundle's folder on the drive stops the pull with drive-unusable."""
    monkeypatch.setattr(BundleWriter, "open", _failing(errno.EIO))
    with pytest.raises(DriveError, match="start of the bundle"):
        pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)


def test_receipt_folder_failing_with_eio_keeps_the_receipt_on_the_laptop(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An I/O error in the clinic's receipts folder after sealing keeps the receipt encrypted
    on the laptop (delivered later) instead of failing the sealed pull."""
    monkeypatch.setattr(reception, "_write_files", _failing(errno.EIO))
    result = pull(
        device,
        settings=settings(small_terminal.root, receipts=tmp_path / "receipts"),
        drive=drive,
        now=NOW,
    )
    assert result.bundle_id is not None and result.receipt is not None
    assert result.receipt.files is None and result.receipt.fallback is not None
    assert "not writable" in result.receipt.reason
    home = device.device.home.root
    assert reception.pending_receipts(home, "clinic-1") == [result.receipt.receipt_id]


def test_clinic_folder_that_cannot_be_made_does_not_stop_the_visit(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """A receipts path the clinic's disk cannot take (here: below a regular file) leaves the
    waiting storage receipt on the drive and the reception receipt on the laptop, and the pull
    still seals its bundle (it used to stop with drive-unusable before copying anything)."""
    document = storage_receipt(
        "clinic-1", "20261120T100000Z-0000abcd", {}, device.device.center.signing_public
    )
    recipient = recipient_of(device.age_identity)
    put_in_outbox(drive.root, "clinic-1", document, center_keys.signing_seed, [recipient])
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    result = pull(
        device,
        settings=settings(small_terminal.root, receipts=blocked / "receipts"),
        drive=drive,
        now=NOW,
    )
    assert result.bundle_id is not None
    assert result.delivery is not None and result.delivery.delivered == []
    [left] = result.delivery.left
    assert "cannot take it" in left.reason and not left.refused
    assert list(drive.outbox("clinic-1").glob("*.age"))
    assert result.receipt is not None and result.receipt.fallback is not None
