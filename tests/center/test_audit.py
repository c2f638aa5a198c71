"""The audit chain detects edited, deleted, inserted and reordered entries."""

from __future__ import annotations

import pytest

from center.core import audit, auditverify
from center.core.archive import Archive, CenterKeys
from common.sqlitedb import transaction
from tests.conftest import NOW


@pytest.fixture
def logged(archive: Archive, center_keys: CenterKeys) -> Archive:
    for n in range(1, 7):
        with transaction(archive.conn):
            audit.record(
                archive.conn,
                at=NOW,
                operator=f"op{n}",
                action="import",
                event_code=audit.EVENT_IMPORT,
                target=f"bundle:{n}",
                details={"n": n},
            )
            if n == 6:
                audit.checkpoint(archive.conn, center_keys.signing_seed, NOW)
    return archive


def _problems(archive: Archive) -> list[tuple[int, str]]:
    report = auditverify.verify_chain(archive.conn, archive.card.signing_public)
    return [(p.seq, p.kind) for p in report.problems]


def test_intact_chain_verifies(logged: Archive) -> None:
    """An untouched log verifies with its checkpoint."""
    report = auditverify.verify_chain(logged.conn, logged.card.signing_public)
    assert report.ok and report.entries == 6 and report.checkpoints == 1


def test_record_outside_a_transaction_is_refused(archive: Archive) -> None:
    """An audit entry cannot be written apart from the action it records."""
    with pytest.raises(RuntimeError):
        audit.record(archive.conn, at=NOW, operator="x", action="a", event_code="1", target="t")


def test_edited_entry_is_named(logged: Archive) -> None:
    """Changing one entry's operator is reported as an edit of that entry."""
    logged.conn.execute("UPDATE audit SET operator = 'mallory' WHERE seq = 3")
    assert _problems(logged) == [(3, "edited")]


def test_deleted_entry_is_named(logged: Archive) -> None:
    """Deleting an entry is reported as deleted at its position."""
    logged.conn.execute("DELETE FROM audit WHERE seq = 4")
    assert (4, "deleted") in _problems(logged)


def test_reordered_entries_are_named(logged: Archive) -> None:
    """Swapping two entries' contents is reported as reordering."""
    rows = {r["seq"]: dict(r) for r in logged.conn.execute("SELECT * FROM audit")}
    for seq, other in ((2, 3), (3, 2)):
        source = rows[other]
        logged.conn.execute(
            "UPDATE audit SET at=?, operator=?, action=?, event_code=?, target=?, outcome=?, "
            "details=?, prev_hash=?, hash=? WHERE seq=?",
            (
                source["at"],
                source["operator"],
                source["action"],
                source["event_code"],
                source["target"],
                source["outcome"],
                source["details"],
                source["prev_hash"],
                source["hash"],
                seq,
            ),
        )
    kinds = {kind for _, kind in _problems(logged)}
    assert "reordered" in kinds


def test_inserted_entry_is_named(logged: Archive) -> None:
    """Inserting an entry and renumbering the rest is reported as an insertion."""
    logged.conn.execute("UPDATE audit SET seq = seq + 100 WHERE seq >= 3")
    logged.conn.execute("UPDATE audit SET seq = seq - 99 WHERE seq >= 103")
    row = logged.conn.execute("SELECT * FROM audit WHERE seq = 2").fetchone()
    logged.conn.execute(
        "INSERT INTO audit VALUES (3, ?, 'mallory', 'import', '110107', 'x', 'success', '{}', "
        "?, ?)",
        (row["at"], row["hash"], "00" * 32),
    )
    assert _problems(logged) == [(3, "inserted")]


def test_rewritten_history_breaks_the_checkpoint(logged: Archive) -> None:
    """Recomputing the whole chain after an edit still contradicts the signed checkpoint."""
    logged.conn.execute("UPDATE audit SET operator = 'mallory' WHERE seq = 2")
    prev = audit.GENESIS.hex()
    for row in logged.conn.execute("SELECT * FROM audit ORDER BY seq").fetchall():
        entry = audit.row_entry(row)
        digest = audit.chain_hash(prev, entry.content())
        logged.conn.execute(
            "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, entry.seq)
        )
        prev = digest
    assert _problems(logged) == [(6, "checkpoint")]


def test_deletion_with_renumbering_is_named(logged: Archive) -> None:
    """Deleting entry 3 and renumbering the rest down is still reported as a deletion at 3."""
    logged.conn.execute("DELETE FROM audit WHERE seq = 3")
    logged.conn.execute("UPDATE audit SET seq = seq - 1 WHERE seq > 3")
    assert (3, "deleted") in _problems(logged)
    assert not [kind for _, kind in _problems(logged) if kind in ("edited", "inserted")]


def test_cutting_the_tail_is_caught_by_the_checkpoint(logged: Archive) -> None:
    """Deleting the last entries leaves an intact chain, but the signed checkpoint sees it."""
    logged.conn.execute("DELETE FROM audit WHERE seq >= 5")
    assert _problems(logged) == [(5, "deleted")]


def test_forged_entry_with_a_valid_hash_is_named_inserted(logged: Archive) -> None:
    """An entry slipped in with a correctly computed hash is still not part of the chain."""
    logged.conn.execute("UPDATE audit SET seq = seq + 100 WHERE seq >= 3")
    logged.conn.execute("UPDATE audit SET seq = seq - 99 WHERE seq >= 103")
    prev = logged.conn.execute("SELECT hash FROM audit WHERE seq = 2").fetchone()[0]
    content = {
        "seq": 3,
        "at": NOW.isoformat(timespec="seconds"),
        "operator": "mallory",
        "action": "export",
        "event_code": "110106",
        "target": "everything",
        "outcome": "success",
        "details": {},
    }
    logged.conn.execute(
        "INSERT INTO audit VALUES (3, ?, 'mallory', 'export', '110106', 'everything', "
        "'success', '{}', ?, ?)",
        (content["at"], prev, audit.chain_hash(prev, content)),
    )
    assert _problems(logged) == [(3, "inserted")]


def test_entry_moved_to_the_end_is_named_reordered(logged: Archive) -> None:
    """Moving entry 2 after entry 6 (renumbering) is reported as reordering."""
    logged.conn.execute("UPDATE audit SET seq = 7 WHERE seq = 2")
    logged.conn.execute("UPDATE audit SET seq = seq - 1 WHERE seq > 2")
    kinds = {kind for _, kind in _problems(logged)}
    assert "reordered" in kinds and "edited" not in kinds


def test_edited_details_are_named(logged: Archive) -> None:
    """Changing an entry's details (not just its columns) is an edit of that entry."""
    logged.conn.execute("UPDATE audit SET details = '{\"n\": 40}' WHERE seq = 4")
    assert _problems(logged) == [(4, "edited")]


def test_unreadable_details_are_an_edit_not_a_crash(logged: Archive) -> None:
    """Details replaced by text that is not JSON are reported as an edit."""
    logged.conn.execute("UPDATE audit SET details = 'garbage' WHERE seq = 2")
    assert _problems(logged) == [(2, "edited")]


def test_checkpoints_from_receipts_catch_a_wiped_checkpoint_table(logged: Archive) -> None:
    """Deleting the checkpoints table and the tail is still caught by a receipt's checkpoint."""
    cp = audit.checkpoints(logged.conn)[0]
    logged.conn.execute("DELETE FROM audit_checkpoints")
    logged.conn.execute("DELETE FROM audit WHERE seq = 6")
    report = auditverify.verify_chain(
        logged.conn, logged.card.signing_public, extra_checkpoints=[cp]
    )
    assert [(p.seq, p.kind) for p in report.problems] == [(6, "deleted")]


def test_alert_is_kept_when_the_action_fails(archive: Archive) -> None:
    """A security alert is committed on its own, even if the action raising it rolls back."""
    with pytest.raises(RuntimeError), transaction(archive.conn):
        archive.conn.execute("INSERT INTO facilities (facility_id, created) VALUES ('f', 'x')")
        raise RuntimeError("the action fails")
    audit.alert(
        archive.conn,
        at=NOW,
        operator="op",
        action="import",
        target="bundle:x",
        event_type=audit.EVENT_TYPE_NODE_AUTHENTICATION,
        reason="unknown device",
    )
    row = archive.conn.execute("SELECT event_code, outcome, details FROM audit").fetchone()
    assert tuple(row)[:2] == ("110113", "refused") and "unknown device" in row[2]


def test_entries_filter_by_time_action_and_limit(logged: Archive) -> None:
    """since, action and limit select entries, still in chain order."""
    with transaction(logged.conn):
        audit.record(
            logged.conn,
            at=NOW.replace(year=2027),
            operator="later",
            action="check",
            event_code=audit.EVENT_INSTANCES_ACCESSED,
            target="archive",
        )
    assert [e.seq for e in audit.entries(logged.conn, since=NOW.replace(year=2027))] == [7]
    assert [e.seq for e in audit.entries(logged.conn, action="import", limit=2)] == [5, 6]


def test_reading_and_verifying_the_log_are_recorded(logged: Archive) -> None:
    """show and verify each add an 'audit' entry (PS3.15 110101) naming the operator."""
    audit.read_log(logged.conn, operator="Auditor", now=NOW, action="import")
    auditverify.verify_log(logged.conn, logged.card.signing_public, operator="Auditor", now=NOW)
    rows = logged.conn.execute(
        "SELECT operator, action, event_code FROM audit WHERE seq > 6 ORDER BY seq"
    ).fetchall()
    assert [tuple(r) for r in rows] == [("Auditor", "audit", "110101")] * 2
