"""`center check`: every kind of finding is reported, and a sound archive has none."""

from __future__ import annotations

import shutil

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.check import (
    AUDIT,
    CATALOG,
    CORRUPT,
    MISSING,
    ORPHAN,
    RECEIPT,
    STRAY,
    WRONG_SIZE,
    check_archive,
    parse_subset,
)
from common.errors import ConfigError
from tests.center.intake.conftest import OBJECTS, World, run_import
from tests.conftest import NOW


@pytest.fixture
def stored(world: World, archive: Archive, keys: CenterKeys) -> Archive:
    run_import(archive, keys, world.drive)
    return archive


def _kinds(archive: Archive, **kwargs: object) -> list[tuple[str, str]]:
    report = check_archive(archive, operator="Checker", now=NOW, **kwargs)  # type: ignore[arg-type]
    return sorted((f.kind, f.target) for f in report.findings)


def _writable(archive: Archive, sha: str) -> None:
    archive.store.path(sha).chmod(0o644)


def test_a_sound_archive_has_no_finding(stored: Archive) -> None:
    """Right after an import, even reading all data finds nothing."""
    report = check_archive(stored, operator="Checker", now=NOW, read_data=True)
    assert report.ok and report.objects_read == OBJECTS == report.objects_cataloged


def test_missing_object_is_reported(stored: Archive) -> None:
    """A cataloged object gone from the store is a missing-object finding."""
    sha = sorted(stored.store)[0]
    _writable(stored, sha)
    stored.store.path(sha).unlink()
    assert _kinds(stored) == [(MISSING, sha)]


def test_orphan_object_is_reported(stored: Archive) -> None:
    """An object no instance refers to (left by an interrupted import) is an orphan."""
    sha = sorted(stored.store)[0]
    stored.conn.execute("DELETE FROM instances WHERE sha256 = ?", (sha,))
    assert _kinds(stored) == [(ORPHAN, sha)]


def test_corruption_is_found_only_by_reading(stored: Archive) -> None:
    """A flipped byte keeps the size: only --read-data finds it, as corrupt-object."""
    sha = sorted(stored.store)[0]
    _writable(stored, sha)
    path = stored.store.path(sha)
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    assert _kinds(stored) == []
    assert _kinds(stored, read_data=True) == [(CORRUPT, sha)]


def test_truncated_object_is_a_size_finding_without_reading(stored: Archive) -> None:
    """An object shorter than cataloged is found by its size alone."""
    sha = sorted(stored.store)[0]
    _writable(stored, sha)
    path = stored.store.path(sha)
    path.write_bytes(path.read_bytes()[:100])
    assert _kinds(stored) == [(WRONG_SIZE, sha)]


def test_stray_file_in_the_store_is_reported(stored: Archive) -> None:
    """A file under objects/ that is not an object at its place is a stray file."""
    (stored.paths.objects / "ab" / "notes.txt").parent.mkdir(parents=True, exist_ok=True)
    (stored.paths.objects / "ab" / "notes.txt").write_text("x")
    assert _kinds(stored) == [(STRAY, "ab/notes.txt")]


def test_catalog_inconsistency_is_reported(stored: Archive) -> None:
    """A bundle marked partial with nothing quarantined contradicts the catalog."""
    stored.conn.execute("UPDATE bundles SET status = 'partial'")
    assert [k for k, _ in _kinds(stored)] == [CATALOG]


def test_missing_receipt_files_are_reported(stored: Archive) -> None:
    """A storage receipt whose files vanished from the archive is reported."""
    shutil.rmtree(stored.paths.receipts / "clinic-1")
    assert {k for k, _ in _kinds(stored)} == {RECEIPT}


def test_audit_chain_break_is_reported(stored: Archive) -> None:
    """An edited audit entry is a finding of the check."""
    stored.conn.execute("UPDATE audit SET operator = 'mallory' WHERE seq = 1")
    assert _kinds(stored) == [(AUDIT, "entry 1")]


def test_subset_reads_everything_once_every_t_runs(stored: Archive) -> None:
    """--subset 1/3 three times re-hashes each object exactly once; the position is kept."""
    read: list[list[int]] = []
    total = 0
    for _ in range(3):
        report = check_archive(stored, operator="Checker", now=NOW, subset=(1, 3))
        read.append(report.slices)
        total += report.objects_read
    assert read == [[0], [1], [2]]
    assert total == OBJECTS
    fourth = check_archive(stored, operator="Checker", now=NOW, subset=(1, 3))
    assert fourth.slices == [0]


def test_each_run_is_recorded(stored: Archive) -> None:
    """A check is recorded in the fixity runs and in the audit log."""
    check_archive(stored, operator="Checker", now=NOW, subset=(2, 5))
    run = stored.conn.execute("SELECT operator, mode, slices FROM fixity_runs").fetchone()
    assert tuple(run) == ("Checker", "subset", "0,1/5")
    entry = stored.conn.execute("SELECT action, outcome FROM audit ORDER BY seq DESC").fetchone()
    assert tuple(entry) == ("check", "success")


@pytest.mark.parametrize("text", ["0/3", "4/3", "1-3", "a/b"])
def test_bad_subset_is_a_clear_error(text: str) -> None:
    """A subset that is not N/T with 1 <= N <= T is refused."""
    with pytest.raises(ConfigError):
        parse_subset(text)
