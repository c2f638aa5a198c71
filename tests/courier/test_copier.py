"""The copy pipeline: streamed big files, bounded memory, files changing under the copy."""

from __future__ import annotations

import pytest

from center.core.archive import CenterKeys
from common.progress import NoProgress
from courier.core import copier
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.pull import pull
from tests.conftest import NOW, Terminal
from tests.courier.conftest import a_instances, decrypt_bundle, sealed_bundles, settings


def _bundle_is_the_terminal(drive: Drive, terminal: Terminal, keys: CenterKeys) -> None:
    [bundle] = sealed_bundles(drive.root)
    objects = decrypt_bundle(bundle, keys.identity)
    assert {uid: copies[0] for uid, copies in objects.items()} == a_instances(terminal)
    assert all(len(copies) == 1 for copies in objects.values())


def test_files_over_the_in_memory_size_are_streamed_into_the_same_bundle(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    center_keys: CenterKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every file above the in-memory limit, the streaming path carries them all."""
    monkeypatch.setattr(copier, "SMALL_FILE", 16)
    result = pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    assert result.instances == len(a_instances(small_terminal))
    _bundle_is_the_terminal(drive, small_terminal, center_keys)


def test_a_tiny_memory_bound_and_batch_still_carry_everything(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    center_keys: CenterKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the writer is always behind (bound of one byte, batches of one), the pipeline waits
    for it and still records every object once."""
    monkeypatch.setattr(copier, "IN_FLIGHT", 1)
    monkeypatch.setattr(copier, "BATCH", 1)
    pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    _bundle_is_the_terminal(drive, small_terminal, center_keys)


class _GrowFirstFile(NoProgress):
    """Appends to a terminal file when the copy starts: it changed after planning."""

    def __init__(self, terminal: Terminal) -> None:
        study = terminal.manifest.a_studies[0]
        self.path = terminal.root / study.instances[0].path

    def phase(self, name: str, total: int | None = None, *, unit: str = "files") -> None:
        if name == "copy":
            with self.path.open("ab") as fh:
                fh.write(b"\0\0")


@pytest.mark.parametrize("small_file", [copier.SMALL_FILE, 16], ids=["in-memory", "streamed"])
def test_a_file_changing_during_the_copy_is_skipped_for_the_next_visit(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    monkeypatch: pytest.MonkeyPatch,
    small_file: int,
) -> None:
    """A file whose size changed since planning is not carried half-old: it is listed as
    skipped, and the others are carried."""
    monkeypatch.setattr(copier, "SMALL_FILE", small_file)
    grow = _GrowFirstFile(small_terminal)
    result = pull(
        device, settings=settings(small_terminal.root), drive=drive, now=NOW, progress=grow
    )
    relpath = grow.path.relative_to(small_terminal.root).as_posix()
    reasons = {s.relpath: s.reason for s in result.plan.skipped}
    assert "changed while being copied" in reasons[relpath]
    assert result.instances == len(a_instances(small_terminal)) - 1
