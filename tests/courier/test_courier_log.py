"""The courier's visit log: a hash chain the laptop checks and every bundle carries."""

from __future__ import annotations

import sqlite3

from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.history import visit_log
from courier.core.pull import pull
from courier.core.scan import scan
from tests.conftest import NOW, Terminal
from tests.courier.conftest import settings


def test_visits_are_logged_with_an_intact_chain(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """Two visits give two log entries and two visit records; the chain verifies."""
    pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    log = visit_log(device.device)
    assert [bool(v.bundle_id) for v in log.visits] == [True, False]
    assert log.chain_entries == 2 and log.chain_problems == []


def test_an_edited_log_entry_is_detected(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """Changing a recorded visit's counts in the journal breaks the chain, and the bundle's
    carried checkpoint no longer matches: both are reported."""
    pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    conn = sqlite3.connect(device.device.home.journal)
    with conn:
        conn.execute(
            "UPDATE courier_log SET content = replace(content, '\"objects\":', "
            "'\"objects\":1') WHERE seq = 1"
        )
    conn.close()
    problems = visit_log(device.device).chain_problems
    assert any("entry 1 was altered" in p for p in problems)


def test_scanning_twice_decides_the_same(device: UnlockedDevice, small_terminal: Terminal) -> None:
    """A scan changes nothing that a second scan would decide differently (idempotent)."""
    first = scan(device, settings(small_terminal.root), NOW)
    second = scan(device, settings(small_terminal.root), NOW)
    assert first.to_dict()["studies"] == second.to_dict()["studies"]
    assert first.plan.not_selected == second.plan.not_selected
    assert len(second.plan.candidates) == len(first.plan.candidates)
    assert second.plan.parsed == 0  # the still-wanted files' headers are kept (sealed)
