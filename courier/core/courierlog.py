"""The courier's hash-chained visit log, carried in every bundle (contract C4, DESIGN.md s10).

Each visit appends an entry (no patient data)::

    {"seq", "at", "facility_id", "bundle_id", "operator", "objects", "studies", "bytes",
     "skipped"}

chained as ``h_i = sha256(b"courier-log-v1\\0" || h_{i-1} || canonical_json(entry_i))`` with
``h_0`` = 32 zero bytes (common/hashchain.py). A bundle's encrypted reception log carries the
entries since the checkpoint the device's previous sealed bundle carried, and a checkpoint of
its own visit signed by the device key. The center, seeing every bundle, can recompute the
chain from one bundle to the next: a history rewritten on the laptop no longer joins what the
center saw before.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from common.canonical import canonical_json
from common.hashchain import GENESIS_HEX, chain_hash, checkpoint_valid, sign_checkpoint
from common.sqlitedb import transaction

LOG_DOMAIN = b"courier-log-v1\0"
CHECKPOINT_CONTEXT = b"clinic-archive courier checkpoint v1\0"

LOG_MIGRATIONS = [
    (
        "courier-log-0001-initial",
        """
    CREATE TABLE courier_log (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        bundle_id TEXT,
        content TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX courier_log_bundle ON courier_log(bundle_id);
    ALTER TABLE bundles ADD COLUMN log_seq INTEGER;
    ALTER TABLE bundles ADD COLUMN log_hash TEXT;
    ALTER TABLE bundles ADD COLUMN log_signature TEXT
    """,
    ),
]


@dataclass(frozen=True)
class LogEntry:
    seq: int
    content: dict[str, Any]
    hash: str


def _row(row: sqlite3.Row | tuple[Any, ...]) -> LogEntry:
    return LogEntry(int(row[0]), json.loads(row[1]), str(row[2]))


def append(conn: sqlite3.Connection, content: dict[str, Any]) -> LogEntry:
    """Append a visit entry; *content* holds every field but ``seq``."""
    with transaction(conn):
        return append_in_transaction(conn, content)


def append_in_transaction(conn: sqlite3.Connection, content: dict[str, Any]) -> LogEntry:
    """:func:`append` inside the caller's transaction (an operator's action and its entry are
    committed together)."""
    last = conn.execute("SELECT seq, hash FROM courier_log ORDER BY seq DESC LIMIT 1")
    row = last.fetchone()
    seq, prev = (1, GENESIS_HEX) if row is None else (int(row[0]) + 1, str(row[1]))
    full = {**content, "seq": seq}
    digest = chain_hash(LOG_DOMAIN, prev, full)
    conn.execute(
        "INSERT INTO courier_log VALUES (?, ?, ?, ?, ?)",
        (seq, str(full["at"]), full.get("bundle_id"), canonical_json(full).decode(), digest),
    )
    return LogEntry(seq, full, digest)


def entry_for_bundle(conn: sqlite3.Connection, bundle_id: str) -> LogEntry | None:
    """The latest entry naming *bundle_id* (a sealing interrupted and resumed with other
    counts appends a second one: the chain is never rewritten)."""
    row = conn.execute(
        "SELECT seq, content, hash FROM courier_log WHERE bundle_id = ? ORDER BY seq DESC LIMIT 1",
        (bundle_id,),
    ).fetchone()
    return None if row is None else _row(row)


def entries(conn: sqlite3.Connection) -> list[LogEntry]:
    return [
        _row(r) for r in conn.execute("SELECT seq, content, hash FROM courier_log ORDER BY seq")
    ]


def carried_block(conn: sqlite3.Connection, entry: LogEntry, seed: bytes) -> dict[str, Any]:
    """The ``courier_log`` object of a bundle's reception log (contract C4).

    Its base is the checkpoint carried by the latest bundle this device sealed before *entry*
    (genesis for the first); its entries run from there up to *entry*, which the checkpoint
    signs.
    """
    row = conn.execute(
        "SELECT log_seq, log_hash FROM bundles WHERE status = 'sealed' AND log_seq IS NOT NULL "
        "AND log_seq < ? ORDER BY log_seq DESC LIMIT 1",
        (entry.seq,),
    ).fetchone()
    base_seq, base_hash = (0, GENESIS_HEX) if row is None else (int(row[0]), str(row[1]))
    rows = conn.execute(
        "SELECT seq, content, hash FROM courier_log WHERE seq > ? AND seq <= ? ORDER BY seq",
        (base_seq, entry.seq),
    )
    return {
        "base": {"seq": base_seq, "hash": base_hash},
        "entries": [{"content": e.content, "hash": e.hash} for e in map(_row, rows)],
        "checkpoint": {
            "seq": entry.seq,
            "hash": entry.hash,
            "signature": sign_checkpoint(CHECKPOINT_CONTEXT, seed, entry.seq, entry.hash),
        },
    }


def verify_block(block: dict[str, Any], public: bytes) -> list[str]:
    """Problems with a carried block (empty when the chain recomputes and the checkpoint
    verifies): what the center checks, also used by the courier's own tests."""
    problems = []
    prev = str(block["base"]["hash"])
    expected_seq = int(block["base"]["seq"]) + 1
    for item in block["entries"]:
        content = item["content"]
        if content.get("seq") != expected_seq:
            problems.append(f"entry {content.get('seq')} out of order (expected {expected_seq})")
        digest = chain_hash(LOG_DOMAIN, prev, content)
        if digest != item["hash"]:
            problems.append(f"entry {content.get('seq')} does not hash to its recorded hash")
        prev, expected_seq = digest, expected_seq + 1
    checkpoint = block["checkpoint"]
    if checkpoint["hash"] != prev or checkpoint["seq"] != expected_seq - 1:
        problems.append("the checkpoint is not the head of the carried entries")
    if not checkpoint_valid(
        CHECKPOINT_CONTEXT, public, checkpoint["seq"], checkpoint["hash"], checkpoint["signature"]
    ):
        problems.append("the checkpoint signature does not verify with the device key")
    return problems


def verify_local(conn: sqlite3.Connection, public: bytes) -> list[str]:
    """Recompute the whole local chain; report any entry that does not hash as recorded, and
    any sealed bundle whose checkpoint is not on the chain."""
    problems = []
    prev = GENESIS_HEX
    heads: dict[int, str] = {}
    for entry in entries(conn):
        if chain_hash(LOG_DOMAIN, prev, entry.content) != entry.hash:
            problems.append(f"log entry {entry.seq} was altered")
        prev = entry.hash
        heads[entry.seq] = entry.hash
    for row in conn.execute(
        "SELECT bundle_id, log_seq, log_hash, log_signature FROM bundles "
        "WHERE status = 'sealed' AND log_seq IS NOT NULL"
    ):
        if heads.get(int(row[1])) != row[2] or not checkpoint_valid(
            CHECKPOINT_CONTEXT, public, int(row[1]), str(row[2]), str(row[3])
        ):
            problems.append(f"bundle {row[0]} carried a checkpoint that is not on the chain")
    return problems
