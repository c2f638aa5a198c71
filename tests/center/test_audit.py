"""The audit chain detects edited, deleted, inserted and reordered entries."""

from __future__ import annotations

import pytest

from center.core import audit
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
    report = audit.verify_chain(archive.conn, archive.card.signing_public)
    return [(p.seq, p.kind) for p in report.problems]


def test_intact_chain_verifies(logged: Archive) -> None:
    """An untouched log verifies with its checkpoint."""
    report = audit.verify_chain(logged.conn, logged.card.signing_public)
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
    problems = _problems(logged)
    assert (3, "edited") in problems and (4, "inserted") in problems


def test_rewritten_history_breaks_the_checkpoint(logged: Archive) -> None:
    """Recomputing the whole chain after an edit still contradicts the signed checkpoint."""
    logged.conn.execute("UPDATE audit SET operator = 'mallory' WHERE seq = 2")
    prev = audit.GENESIS.hex()
    for row in logged.conn.execute("SELECT * FROM audit ORDER BY seq").fetchall():
        entry = audit._row_entry(row)
        digest = audit.chain_hash(prev, entry.content())
        logged.conn.execute(
            "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, entry.seq)
        )
        prev = digest
    assert _problems(logged) == [(6, "checkpoint")]
