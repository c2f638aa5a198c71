"""Temp files in the archive's tmp/ are swept only when no maintenance command owns them."""

from __future__ import annotations

from pathlib import Path

from center.core.archive import open_archive
from center.core.lock import maintenance_lock


def _temp(archive_root: Path) -> Path:
    tmp = archive_root / "tmp" / "0123456789abcdef.tmp-partial"
    tmp.write_bytes(b"half-written object")
    return tmp


def test_open_sweeps_a_leftover_temp_file(archive_root: Path) -> None:
    """With no import or check running, a leftover temp file is removed on open."""
    tmp = _temp(archive_root)
    with open_archive(archive_root):
        pass
    assert not tmp.exists()


def test_open_spares_temp_files_of_a_running_import(archive_root: Path) -> None:
    """While another command holds the maintenance lock, its temp files are left alone."""
    tmp = _temp(archive_root)
    with maintenance_lock(archive_root, "import"), open_archive(archive_root):
        pass
    assert tmp.exists()
