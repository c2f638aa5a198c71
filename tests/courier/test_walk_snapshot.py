"""A walk snapshot answers a re-scan exactly as the journal would, and only while it is current.

Each scenario scans (which leaves a snapshot), changes something (the journal, the terminal or
the rule), then plans twice: once as a courier does (from the snapshot when one is there) and
once asking the journal only. The two plans must be the same, file by file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from center.core.archive import CenterKeys
from courier.core import journal as journal_module
from courier.core import walksnapshot
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.journal import Journal
from courier.core.journal_schema import WALK_READS
from courier.core.plan import Plan, plan_folder
from courier.core.pull import pull
from courier.core.release import release_bundle
from courier.core.scan import scan
from courier.core.selection import DEFAULT_RULE, build_rule, parse_rule
from tests.conftest import NOW, Terminal
from tests.courier.conftest import a_instances, settings
from tests.courier.test_pull import _rewrite as _rewrite_instance
from tests.courier.test_release import _confirm_elsewhere


def _plan(device: UnlockedDevice, root: Path, rule: str = DEFAULT_RULE) -> Plan:
    with Journal.open(device) as journal:
        return plan_folder(journal, "clinic-1", root, build_rule(parse_rule(rule, field="rule")))


def _view(plan: Plan) -> dict[str, Any]:
    """Everything a plan decided, file by file (not how: ``parsed`` differs by design)."""
    return {
        "candidates": [
            (c.file.relpath, c.file_key, c.sop_key, c.study_key, c.changed, vars(c.header))
            for c in plan.candidates
        ],
        "skipped": [(s.relpath, s.reason) for s in plan.skipped],
        "counts": (
            plan.files_seen,
            plan.not_selected,
            plan.already_carried,
            plan.confirmed,
            plan.duplicates,
            plan.dicom_bytes,
            dict(plan.study_bytes),
        ),
    }


def _snapshots(device: UnlockedDevice) -> int:
    conn = sqlite3.connect(device.device.home.journal)
    try:
        return int(conn.execute("SELECT count(*) FROM walk_snapshots").fetchone()[0])
    finally:
        conn.close()


def _same_as_the_journal(
    device: UnlockedDevice, root: Path, monkeypatch: pytest.MonkeyPatch, rule: str = DEFAULT_RULE
) -> Plan:
    """The courier's plan, checked against a plan that asks the journal for every file (and
    leaves the snapshot as the courier's plan left it)."""
    planned = _plan(device, root, rule)
    with monkeypatch.context() as m:
        m.setattr(walksnapshot, "load", lambda *args: {})
        m.setattr(walksnapshot, "save", lambda *args: None)  # the courier's snapshot stays
        asked = _plan(device, root, rule)
    assert _view(planned) == _view(asked)
    return planned


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each journal lookup of a walk asked for."""
    asked: list[int] = []
    real = journal_module.Journal.file_states

    def counting(self: Journal, facility_id: str, file_keys: list[str]) -> Any:
        asked.append(len(file_keys))
        return real(self, facility_id, file_keys)

    monkeypatch.setattr(journal_module.Journal, "file_states", counting)
    return asked


def test_a_rescan_of_an_unchanged_terminal_asks_the_journal_nothing(
    device: UnlockedDevice, terminal: Terminal, lookups: list[int]
) -> None:
    """The second scan answers every file from the first one's snapshot: no lookup, no kept
    header opened, and the same result."""
    first = scan(device, settings(terminal.root), NOW)
    assert lookups and _snapshots(device) == 1
    lookups.clear()
    opened: list[str] = []
    real_open = journal_module.Journal.open_header

    def counting_open(self: Journal, facility_id: str, file_key: str, blob: bytes) -> Any:
        opened.append(file_key)
        return real_open(self, facility_id, file_key, blob)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(journal_module.Journal, "open_header", counting_open)
        second = scan(device, settings(terminal.root), NOW)
    assert lookups == [] and opened == []
    assert second.plan.parsed == 0 and len(second.plan.candidates) == len(first.plan.candidates)
    assert second.to_dict()["studies"] == first.to_dict()["studies"]
    assert _snapshots(device) == 1


@pytest.mark.parametrize("table", WALK_READS)
@pytest.mark.parametrize("change", ["INSERT", "UPDATE", "DELETE"])
def test_any_change_to_a_table_a_walk_reads_ends_the_snapshots(
    device: UnlockedDevice, terminal: Terminal, table: str, change: str
) -> None:
    scan(device, settings(terminal.root), NOW)
    assert _snapshots(device) == 1
    conn = sqlite3.connect(device.device.home.journal)
    columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    insert = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - the test's own constants
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    with conn:
        if change != "INSERT":  # a row to change, then a snapshot again
            conn.execute(insert, ["0"] * len(columns))
            conn.execute("INSERT INTO walk_snapshots VALUES ('clinic-1', x'00')")
    assert _snapshots(device) == 1
    with conn:
        if change == "INSERT":
            conn.execute(insert, ["0"] * len(columns))
        elif change == "UPDATE":
            conn.execute(f"UPDATE {table} SET {columns[-1]} = '1' WHERE {columns[0]} = '0'")  # noqa: S608
        else:
            conn.execute(f"DELETE FROM {table} WHERE {columns[0]} = '0'")  # noqa: S608
    conn.close()
    assert _snapshots(device) == 0


def _touch(root: Path) -> None:
    path = next(p for p in sorted(root.rglob("*")) if p.is_file())
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _rewrite(root: Path) -> None:
    path = next(p for p in sorted(root.rglob("*")) if p.is_file())
    path.write_bytes(path.read_bytes() + b"\0\0")


def _add_junk(root: Path) -> None:
    (root / "notes.txt").write_text("not an image")


def _remove(root: Path) -> None:
    next(p for p in sorted(root.rglob("*")) if p.is_file()).unlink()


@pytest.mark.parametrize(
    "change", [_touch, _rewrite, _add_junk, _remove], ids=["touch", "rewrite", "junk", "remove"]
)
def test_a_changed_terminal_is_planned_as_the_journal_says(
    device: UnlockedDevice,
    terminal: Terminal,
    change: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scan(device, settings(terminal.root), NOW)
    change(terminal.root)
    _same_as_the_journal(device, terminal.root, monkeypatch)
    _same_as_the_journal(device, terminal.root, monkeypatch)  # from the new snapshot


def test_another_rule_is_planned_as_the_journal_says(
    device: UnlockedDevice, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan(device, settings(terminal.root), NOW)
    plan = _same_as_the_journal(device, terminal.root, monkeypatch, rule="StudyID:1")
    assert plan.parsed > 0


def test_after_a_pull_everything_is_carried_as_the_journal_says(
    device: UnlockedDevice, drive: Drive, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan(device, settings(terminal.root), NOW)
    pull(device, settings=settings(terminal.root), drive=drive, now=NOW)
    plan = _same_as_the_journal(device, terminal.root, monkeypatch)
    assert plan.candidates == [] and plan.already_carried == len(a_instances(terminal))
    plan = _same_as_the_journal(device, terminal.root, monkeypatch)  # from the new snapshot
    assert plan.candidates == []
    inst = terminal.manifest.a_studies[0].instances[0]
    _rewrite_instance(terminal.root / inst.path, StudyDescription="corrected by the clinic")
    for _ in range(2):  # parsed, then from the snapshot that walk left
        plan = _same_as_the_journal(device, terminal.root, monkeypatch)
        assert [c.changed for c in plan.candidates] == [True]
    _add_junk(terminal.root)  # its chunk's kept headers opened from the journal this time
    for _ in range(2):
        plan = _same_as_the_journal(device, terminal.root, monkeypatch)
        assert [c.changed for c in plan.candidates] == [True]


def test_confirmations_and_releases_are_planned_as_the_journal_says(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Storage receipts delivered (for an instance only scanned, then for one carried) and a
    lost drive released: each is seen by the next walk, though the walk before it left a
    snapshot, and the walk after it answers from the snapshot that walk left."""

    def twice() -> Plan:
        _same_as_the_journal(device, terminal.root, monkeypatch)
        return _same_as_the_journal(device, terminal.root, monkeypatch)

    stored = a_instances(terminal)
    first_uid, second_uid = sorted(stored)[:2]
    scan(device, settings(terminal.root), NOW)
    _confirm_elsewhere(device, drive, center_keys, {first_uid: stored[first_uid]}, tmp_path)
    plan = twice()
    assert plan.confirmed == 1 and len(plan.candidates) == len(stored) - 1
    pulled = pull(device, settings=settings(terminal.root), drive=drive, now=NOW)
    assert pulled.bundle_id is not None
    assert twice().candidates == []
    _confirm_elsewhere(device, drive, center_keys, {second_uid: stored[second_uid]}, tmp_path)
    plan = twice()
    assert plan.confirmed == 2 and plan.candidates == []
    release_bundle(device, pulled.bundle_id, reason="drive lost in transit", now=NOW)
    assert len(twice().candidates) == len(stored) - 2


@pytest.mark.parametrize("damage", ["zeroblob(64)", "x'00'"], ids=["altered", "cut short"])
def test_a_snapshot_that_does_not_open_is_ignored(
    device: UnlockedDevice, terminal: Terminal, lookups: list[int], damage: str
) -> None:
    """A damaged snapshot is not trusted: the walk asks the journal and writes a new one."""
    first = scan(device, settings(terminal.root), NOW)
    conn = sqlite3.connect(device.device.home.journal)
    with conn:
        conn.execute(f"UPDATE walk_snapshots SET snapshot = {damage}")  # noqa: S608 - constants
    conn.close()
    lookups.clear()
    second = scan(device, settings(terminal.root), NOW)
    assert lookups and second.to_dict()["studies"] == first.to_dict()["studies"]
    lookups.clear()
    scan(device, settings(terminal.root), NOW)
    assert lookups == []


def test_a_terminal_of_too_many_files_gets_no_snapshot(
    device: UnlockedDevice,
    terminal: Terminal,
    lookups: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the limit a walk keeps no records (its memory stays one chunk's) and every walk
    asks the journal, with the same result."""
    monkeypatch.setattr(walksnapshot, "LIMIT", 3)
    first = scan(device, settings(terminal.root), NOW)
    assert _snapshots(device) == 0
    lookups.clear()
    second = scan(device, settings(terminal.root), NOW)
    assert lookups and _snapshots(device) == 0
    assert second.to_dict()["studies"] == first.to_dict()["studies"]


def test_a_pull_reads_a_snapshot_and_keeps_none(
    device: UnlockedDevice, drive: Drive, terminal: Terminal, lookups: list[int]
) -> None:
    """The pull after a scan asks the journal nothing while planning; having written, it
    leaves no snapshot (its writes ended the scan's; keeping its own would be wasted)."""
    scan(device, settings(terminal.root), NOW)
    lookups.clear()
    first = pull(device, settings=settings(terminal.root), drive=drive, now=NOW)
    assert first.instances == len(a_instances(terminal)) and _snapshots(device) == 0
    assert lookups == []  # planned from the scan's snapshot
    pull(device, settings=settings(terminal.root), drive=drive, now=NOW)  # nothing to take
    assert _snapshots(device) == 0


def test_a_snapshot_written_by_another_python_is_ignored(
    device: UnlockedDevice, terminal: Terminal, lookups: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """marshal's format may change between Python versions: a snapshot another one wrote is
    not read, the journal is asked."""
    scan(device, settings(terminal.root), NOW)
    monkeypatch.setattr(walksnapshot, "_FORMAT", (1, (2, 7)))
    lookups.clear()
    scan(device, settings(terminal.root), NOW)
    assert lookups
