"""Selected files' headers are kept sealed in the journal: a scan, then a pull, parse once."""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

import pytest

from center.core.archive import CenterKeys
from common.dicomhdr import read_header_values
from courier.core import plan as plan_module
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.pull import pull
from courier.core.scan import scan
from tests.conftest import NOW, Terminal
from tests.courier.conftest import a_instances, decrypt_bundle, sealed_bundles, settings


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file whose header the planner parses."""
    seen: list[str] = []

    def counting(path: Any, tags: Any) -> Any:
        seen.append(str(path))
        return read_header_values(path, tags)

    monkeypatch.setattr(plan_module, "read_header_values", counting)
    return seen


def test_a_pull_after_a_scan_parses_nothing_again(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    parses: list[str],
    center_keys: CenterKeys,
) -> None:
    """The pull takes the scan's decisions and headers from the journal and carries every A
    instance, right."""
    scan(device, settings(small_terminal.root), NOW)
    parsed_by_scan = len(parses)
    result = pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    assert parsed_by_scan > 0 and len(parses) == parsed_by_scan
    assert result.plan.parsed == 0
    [bundle] = sealed_bundles(drive.root)
    objects = decrypt_bundle(bundle, center_keys.identity)
    assert {uid: copies[0] for uid, copies in objects.items()} == a_instances(small_terminal)


def test_a_changed_rule_parses_the_selected_files_again(
    device: UnlockedDevice, small_terminal: Terminal, parses: list[str]
) -> None:
    """A decision taken under another rule is not reused: every file is read again."""
    scan(device, settings(small_terminal.root), NOW)
    before = len(parses)
    result = scan(device, settings(small_terminal.root, rule="StudyID:1"), NOW)
    assert result.plan.parsed == before == len(parses) - before


def test_a_kept_header_that_does_not_open_is_parsed_again(
    device: UnlockedDevice, small_terminal: Terminal, parses: list[str]
) -> None:
    """A damaged sealed header is not trusted: that file is parsed again, and the scan says
    the same as before."""
    first = scan(device, settings(small_terminal.root), NOW)
    conn = sqlite3.connect(device.device.home.journal)
    with conn:
        conn.execute("UPDATE files SET header = zeroblob(64) WHERE header IS NOT NULL")
    conn.close()
    before = len(parses)
    second = scan(device, settings(small_terminal.root), NOW)
    assert len(parses) - before == len(first.plan.candidates) > 0
    assert second.to_dict()["studies"] == first.to_dict()["studies"]


def test_a_header_kept_with_another_field_list_is_parsed_again(
    device: UnlockedDevice,
    small_terminal: Terminal,
    parses: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Headers kept by a version that read other fields are not reused: each selected file is
    parsed again, and the scan says the same as before."""
    first = scan(device, settings(small_terminal.root), NOW)
    monkeypatch.setattr(plan_module, "_HEADER_FIELDS", plan_module._HEADER_FIELDS + ",extra")
    before = len(parses)
    second = scan(device, settings(small_terminal.root), NOW)
    assert second.plan.parsed == len(parses) - before == len(first.plan.candidates) > 0
    assert second.to_dict()["studies"] == first.to_dict()["studies"]


def test_a_rescan_keeps_walk_order_when_an_earlier_file_is_parsed_again(
    device: UnlockedDevice,
    small_terminal: Terminal,
    parses: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kept headers wait for a file parsed again before them, however long its parse takes:
    the candidates stay in walk order, and only the touched file is parsed."""
    first = scan(device, settings(small_terminal.root), NOW)
    touched = first.plan.candidates[0].file
    os.utime(touched.path, ns=(touched.mtime_ns + 10**9, touched.mtime_ns + 10**9))
    counting = plan_module.read_header_values

    def slow(path: Any, tags: Any) -> Any:
        threading.Event().wait(0.2)  # the kept headers after it are decided meanwhile
        return counting(path, tags)

    monkeypatch.setattr(plan_module, "read_header_values", slow)
    before = len(parses)
    second = scan(device, settings(small_terminal.root), NOW)
    assert parses[before:] == [str(touched.path)]
    relpaths = [c.file.relpath for c in second.plan.candidates]
    assert relpaths == [c.file.relpath for c in first.plan.candidates] == sorted(relpaths)
    assert len(relpaths) > 1
