"""Directory entries made durable with one syncfs per file system, or an fsync per directory
where there is no syncfs; a failure is the archive's storage error."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from center.core.store import ObjectStore
from common import fsio
from common.errors import ArchiveFull, StorageError


def _dirs(root: Path, count: int) -> list[Path]:
    made = []
    for i in range(count):
        folder = root / f"{i:02x}" / "cd"
        folder.mkdir(parents=True)
        (folder / "object").write_bytes(b"x")
        made += [folder, folder.parent]
    return made


def test_one_syncfs_for_many_directories_of_one_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = fsio.syncfs

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)  # the real syncfs(2): it must not fail here

    monkeypatch.setattr(fsio, "syncfs", counting)
    fsio.sync_file_systems(_dirs(tmp_path, 5))
    assert len(calls) == 1


def test_without_syncfs_every_directory_is_fsynced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(fsio, "_libc_syncfs", lambda: None)
    monkeypatch.setattr(fsio, "fsync_dir", synced.append)
    dirs = _dirs(tmp_path, 3)
    fsio.sync_file_systems([*dirs, *dirs])
    assert synced == dirs


@pytest.mark.parametrize(
    ("code", "error"), [(errno.EIO, StorageError), (errno.ENOSPC, ArchiveFull)]
)
def test_a_failed_syncfs_is_the_archives_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, error: type[Exception]
) -> None:
    def failing(fd: int) -> None:
        raise OSError(code, "injected")

    monkeypatch.setattr(fsio, "syncfs", failing)
    with pytest.raises(error, match="directories"):
        ObjectStore(tmp_path).sync_dirs(_dirs(tmp_path, 2))
