"""Resuming an interrupted pull: the journal is the truth, the drive is re-checked."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from center.core.archive import CenterKeys
from common.bundle import format as fmt
from common.progress import NoProgress
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.pull import pull
from tests.conftest import NOW, Terminal
from tests.courier.conftest import a_instances, decrypt_bundle, sealed_bundles, settings


class _Interrupted(Exception):
    """Stands for a crash at a chosen phase (a real kill is tested in tests/e2e)."""


class _StopAt(NoProgress):
    def __init__(self, phase: str) -> None:
        self._phase = phase

    def phase(self, name: str, total: int | None = None, *, unit: str = "files") -> None:
        if name == self._phase:
            raise _Interrupted(name)


def _interrupted_pull(device: UnlockedDevice, drive: Drive, terminal: Terminal, phase: str) -> Path:
    with pytest.raises(_Interrupted):
        pull(
            device, settings=settings(terminal.root), drive=drive, now=NOW, progress=_StopAt(phase)
        )
    [bundle] = list(drive.bundles.iterdir())
    assert not (bundle / fmt.SIGNATURE).exists()
    return bundle


def _resumed_bundle_is_right(
    device: UnlockedDevice, drive: Drive, terminal: Terminal, keys: CenterKeys
) -> None:
    result = pull(device, settings=settings(terminal.root), drive=drive, now=NOW)
    assert result.resumed
    [bundle] = sealed_bundles(drive.root)
    objects = decrypt_bundle(bundle, keys.identity)
    expected = a_instances(terminal)
    assert {uid: copies[0] for uid, copies in objects.items()} == expected
    assert all(len(copies) == 1 for copies in objects.values())


def test_object_missing_from_the_drive_is_copied_again(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, center_keys: CenterKeys
) -> None:
    """An object the journal lists but the drive lost is copied again before sealing."""
    bundle = _interrupted_pull(device, drive, small_terminal, "read-back")
    (bundle / fmt.object_relpath(2)).unlink()
    _resumed_bundle_is_right(device, drive, small_terminal, center_keys)


def test_object_altered_on_the_drive_is_caught_by_the_read_back(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, center_keys: CenterKeys
) -> None:
    """An object altered on the drive (same size) fails the read-back and is copied again:
    the bundle is never sealed with it."""
    bundle = _interrupted_pull(device, drive, small_terminal, "read-back")
    path = bundle / fmt.object_relpath(1)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    _resumed_bundle_is_right(device, drive, small_terminal, center_keys)


def test_files_the_journal_does_not_know_are_removed(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, center_keys: CenterKeys
) -> None:
    """An object written but never journaled (crash before the row) and temp files go away."""
    bundle = _interrupted_pull(device, drive, small_terminal, "read-back")
    orphan = bundle / fmt.object_relpath(999)
    orphan.write_bytes(b"written, then the laptop died")
    temp = bundle / "data" / "s0000" / ".000004.age.1a2b3c4d.tmp-partial"
    temp.write_bytes(b"half")
    result = pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    assert result.repaired is not None and result.repaired.orphans == 1
    assert result.repaired.temp_files == 1 and not orphan.exists() and not temp.exists()
    decrypt_bundle(sealed_bundles(drive.root)[0], center_keys.identity)


def test_forged_signature_on_an_open_bundle_is_removed_and_resealed(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, center_keys: CenterKeys
) -> None:
    """A signature that does not verify on a bundle the journal says is open is not trusted:
    the bundle is unsealed, checked and sealed properly."""
    bundle = _interrupted_pull(device, drive, small_terminal, "seal")
    (bundle / fmt.TAGMANIFEST).write_text("0" * 64 + "  bagit.txt\n")
    (bundle / fmt.SIGNATURE).write_bytes(base64.b64encode(b"\0" * 64) + b"\n")
    _resumed_bundle_is_right(device, drive, small_terminal, center_keys)


def test_pull_onto_another_drive_warns_about_the_unfinished_bundle(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, tmp_path: Path
) -> None:
    """A bundle left unfinished on one drive is pointed out when pulling onto another."""
    from courier.core.drive import init_drive

    _interrupted_pull(device, drive, small_terminal, "read-back")
    other = tmp_path / "other-drive"
    other.mkdir()
    result = pull(device, settings=settings(small_terminal.root), drive=init_drive(other), now=NOW)
    assert any("unfinished on another drive" in w for w in result.warnings)
    assert result.bundle_id is None  # its instances are in the unfinished bundle
