"""The storing pipeline: streamed big objects, tight memory bounds, the same bytes twice, a
write failing part-way."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from center.core import storing
from center.core.archive import Archive, CenterKeys
from center.core.importreport import IMPORTED
from common.bundle import format as fmt
from common.crypto import encrypt_bytes
from common.errors import ArchiveFull
from tests.center.intake.conftest import OBJECTS, World, count, run_import, sha256_of
from tests.center.intake.kit import init_drive, write_bundle


def _stored_right(world: World, archive: Archive) -> None:
    for path in world.files:
        assert archive.store.path(sha256_of(path)).read_bytes() == path.read_bytes()
    assert count(archive.conn, "instances") == OBJECTS


def test_objects_over_the_in_memory_size_are_streamed_into_the_store(
    world: World, archive: Archive, keys: CenterKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every object above the in-memory limit, the streaming path stores them all."""
    monkeypatch.setattr(storing, "SMALL_OBJECT", 16)
    report = run_import(archive, keys, world.drive)
    assert [(o.status, o.stored) for o in report.outcomes] == [(IMPORTED, OBJECTS)]
    _stored_right(world, archive)


def test_one_byte_bounds_and_no_lag_still_store_everything(
    world: World, archive: Archive, keys: CenterKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every bound is always reached, the pipeline waits for its writer and still stores
    every object once."""
    for name, value in (("READ_AHEAD", 1), ("WRITE_BEHIND", 1), ("LAG", 0)):
        monkeypatch.setattr(storing, name, value)
    report = run_import(archive, keys, world.drive)
    assert [(o.status, o.stored) for o in report.outcomes] == [(IMPORTED, OBJECTS)]
    _stored_right(world, archive)


def test_the_same_bytes_twice_in_a_bundle_are_stored_once(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A bundle listing one file twice: the second waits for the first write, finds the bytes
    in the store, checks their header, and both count as stored."""
    drive = init_drive(world.root / "twice")
    first = world.files[0]
    write_bundle(drive, world.device, world.recipients, [first, first, world.files[1]])
    report = run_import(archive, keys, drive)
    assert [(o.status, o.stored, o.quarantined) for o in report.outcomes] == [(IMPORTED, 3, 0)]
    assert archive.store.path(sha256_of(first)).read_bytes() == first.read_bytes()


def test_a_write_failing_midway_stops_the_import_and_leaves_no_temp_file(
    world: World, archive: Archive, keys: CenterKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the fourth object's write: archive-full is raised, no temporary file is left,
    nothing is cataloged, and the objects already placed are whole."""
    real_write = os.write
    calls = {"n": 0}

    def failing(fd: int, data: Any) -> int:
        if str(Path(f"/proc/self/fd/{fd}").readlink()).startswith(str(archive.paths.tmp)):
            calls["n"] += 1
            if calls["n"] == 4:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing)
    with pytest.raises(ArchiveFull):
        run_import(archive, keys, world.drive)
    assert not list(archive.paths.tmp.iterdir())
    assert count(archive.conn, "instances") == 0
    by_sha = {sha256_of(p): p.read_bytes() for p in world.files}
    for sha in archive.store:
        assert archive.store.path(sha).read_bytes() == by_sha[sha]


def _not_stored(archive: Archive) -> list[dict[str, str]]:
    doc = json.loads(archive.conn.execute("SELECT document FROM storage_receipts").fetchone()[0])
    return list(doc["not_stored"])


def test_an_object_altered_on_the_drive_is_caught_against_the_manifest_while_stored(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A bit flipped in an object (same size: the verification's size check passes it) is
    found by its ciphertext hash as it is read for storing, and named as the drive's damage."""
    path = world.bundle / fmt.object_relpath(2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = run_import(archive, keys, world.drive)
    assert [(o.stored, o.quarantined) for o in report.outcomes] == [(OBJECTS - 1, 1)]
    reason = "altered on the drive: its ciphertext differs from the signed manifest"
    assert _not_stored(archive) == [{"item": fmt.object_relpath(2), "reason": reason}]


def test_an_object_cut_short_on_the_drive_is_named_truncated(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A shorter object is named truncated, with its size and the signed size."""
    path = world.bundle / fmt.object_relpath(2)
    data = path.read_bytes()
    path.write_bytes(data[:100])
    run_import(archive, keys, world.drive)
    reason = f"truncated on the drive (100 of {len(data)} bytes)"
    assert _not_stored(archive) == [{"item": fmt.object_relpath(2), "reason": reason}]


def test_an_object_replaced_by_another_valid_one_is_named_altered(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """An object replaced on the drive by another age file of the same size, encrypted to the
    same recipients (it decrypts, to other bytes): an object stored is not hashed against the
    manifest, so a refused one is checked against it then, and named as the drive's damage
    rather than as a bad object."""
    path = world.bundle / fmt.object_relpath(2)
    size = path.stat().st_size
    other = world.files[0].read_bytes()
    forged = b""
    for _ in range(5000):  # age's random "grease" stanza varies the header's length
        forged = encrypt_bytes(other, world.recipients)
        if len(forged) == size:
            break
    assert len(forged) == size
    path.write_bytes(forged)
    report = run_import(archive, keys, world.drive)
    assert [(o.stored, o.quarantined) for o in report.outcomes] == [(OBJECTS - 1, 1)]
    reason = "altered on the drive: its ciphertext differs from the signed manifest"
    assert _not_stored(archive) == [{"item": fmt.object_relpath(2), "reason": reason}]
