"""The center's tamper-evident audit log (DESIGN.md s10).

Append-only and hash-chained: ``h_i = sha256("audit-v1\\0" || h_{i-1} || canonical_json(e_i))``
with ``h_0`` = 32 zero bytes, where ``e_i`` holds the entry's sequence number, time, operator,
action, DICOM PS3.15 event code (A.5.3 / CID 400 "Audit Event ID"), target, outcome and
details. Signed checkpoints (Ed25519 by the center key over seq and hash) travel on storage
receipts, so a history rewritten afterwards is detectable by someone holding an old receipt.

:func:`record` must be called inside the caller's transaction, so an action and its audit
entry commit together or not at all; :func:`alert` records a security alert in a transaction
of its own, so a refusal is kept although the refused action fails. Verification of the chain
is in :mod:`center.core.auditverify`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common import hashchain
from common.sqlitedb import transaction

# DICOM PS3.15 A.5.3 event ids (DCM code values), by our action names.
EVENT_APPLICATION_ACTIVITY = "110100"
EVENT_AUDIT_LOG_USED = "110101"
EVENT_INSTANCES_ACCESSED = "110103"
EVENT_STUDY_DELETED = "110105"
EVENT_EXPORT = "110106"
EVENT_IMPORT = "110107"
EVENT_QUERY = "110112"
EVENT_SECURITY_ALERT = "110113"
EVENT_USER_AUTHENTICATION = "110114"

# PS3.15 A.5.3 / CID 401 "Audit Event Type Code" values used with a security alert.
EVENT_TYPE_NODE_AUTHENTICATION = "110126"
EVENT_TYPE_SECURITY_CONFIGURATION = "110129"

# Outcomes, as words (the PS3.15 EventOutcomeIndicator is 0 for success, 4 for a partial
# success, 8 for a refusal).
OUTCOME_SUCCESS = "success"
OUTCOME_PARTIAL = "partial"
OUTCOME_REFUSED = "refused"
OUTCOME_FINDINGS = "findings"

GENESIS = bytes(32)
AUDIT_DOMAIN = b"audit-v1\0"
CHECKPOINT_CONTEXT = b"clinic-archive audit checkpoint v1\0"

AUDIT_MIGRATIONS = [
    (
        "audit-0001-initial",
        """
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            operator TEXT NOT NULL,
            action TEXT NOT NULL,
            event_code TEXT NOT NULL,
            target TEXT NOT NULL,
            outcome TEXT NOT NULL,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_action ON audit(action);
        CREATE INDEX audit_at ON audit(at);
        CREATE TABLE audit_checkpoints (
            seq INTEGER PRIMARY KEY,
            hash TEXT NOT NULL,
            at TEXT NOT NULL,
            signature TEXT NOT NULL
        )
        """,
    ),
]


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    operator: str
    action: str
    event_code: str
    target: str
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """The hashed part of the entry."""
        return {
            "seq": self.seq,
            "at": self.at,
            "operator": self.operator,
            "action": self.action,
            "event_code": self.event_code,
            "target": self.target,
            "outcome": self.outcome,
            "details": self.details,
        }


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    signature: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "at": self.at, "signature": self.signature}


def chain_hash(prev_hex: str, content: dict[str, Any]) -> str:
    return hashchain.chain_hash(AUDIT_DOMAIN, prev_hex, content)


def _details(raw: object) -> dict[str, Any]:
    """Stored details; a value that is not a JSON object (an edit) is kept as text to be hashed."""
    try:
        value = json.loads(str(raw))
    except ValueError:
        return {"unreadable": str(raw)}
    return value if isinstance(value, dict) else {"unreadable": str(raw)}


def row_entry(row: sqlite3.Row) -> AuditEntry:
    """An entry from its database row."""
    return AuditEntry(
        seq=int(row["seq"]),
        at=str(row["at"]),
        operator=str(row["operator"]),
        action=str(row["action"]),
        event_code=str(row["event_code"]),
        target=str(row["target"]),
        outcome=str(row["outcome"]),
        details=_details(row["details"]),
        prev_hash=str(row["prev_hash"]),
        hash=str(row["hash"]),
    )


def record(
    conn: sqlite3.Connection,
    *,
    at: datetime,
    operator: str,
    action: str,
    event_code: str,
    target: str,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry; call inside the transaction of the action it records."""
    if not conn.in_transaction:
        raise RuntimeError("audit.record must run inside the action's transaction")
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (1, GENESIS.hex()) if last is None else (int(last[0]) + 1, str(last[1]))
    content = {
        "seq": seq,
        "at": at.isoformat(timespec="seconds"),
        "operator": operator,
        "action": action,
        "event_code": event_code,
        "target": target,
        "outcome": outcome,
        "details": details or {},
    }
    digest = chain_hash(prev, content)
    conn.execute(
        "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            content["at"],
            operator,
            action,
            event_code,
            target,
            outcome,
            json.dumps(content["details"], sort_keys=True),
            prev,
            digest,
        ),
    )
    return AuditEntry(**content, prev_hash=prev, hash=digest)  # type: ignore[arg-type]


def checkpoint(conn: sqlite3.Connection, signing_seed: bytes, at: datetime) -> Checkpoint | None:
    """Sign the chain's current head (inside the caller's transaction); None if empty."""
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if last is None:
        return None
    seq, digest = int(last[0]), str(last[1])
    signature = hashchain.sign_checkpoint(CHECKPOINT_CONTEXT, signing_seed, seq, digest)
    cp = Checkpoint(seq, digest, at.isoformat(timespec="seconds"), signature)
    conn.execute(
        "INSERT OR REPLACE INTO audit_checkpoints VALUES (?, ?, ?, ?)",
        (cp.seq, cp.hash, cp.at, cp.signature),
    )
    return cp


def checkpoint_valid(cp: Checkpoint, public: bytes) -> bool:
    return hashchain.checkpoint_valid(CHECKPOINT_CONTEXT, public, cp.seq, cp.hash, cp.signature)


def entries(
    conn: sqlite3.Connection,
    *,
    since: datetime | None = None,
    action: str | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """Entries in chain order, from *since* on (compared in UTC), of *action* only if given.

    With *limit*, the latest *limit* entries that match, still in chain order.
    """
    sql, params = "SELECT * FROM audit WHERE 1 = 1", []
    if since is not None:
        sql += " AND at >= ?"
        params.append(since.astimezone(UTC).isoformat(timespec="seconds"))
    if action:
        sql += " AND action = ?"
        params.append(action)
    sql += " ORDER BY seq DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [row_entry(r) for r in reversed(conn.execute(sql, params).fetchall())]


def alert(
    conn: sqlite3.Connection,
    *,
    at: datetime,
    operator: str,
    action: str,
    target: str,
    event_type: str,
    reason: str,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record a security alert (110113) in a transaction of its own.

    The refusal it records is committed even though the action that raised it fails; *reason*
    is the operator-facing message (no patient data), *event_type* a PS3.15 event type code.
    """
    with transaction(conn):
        return record(
            conn,
            at=at,
            operator=operator,
            action=action,
            event_code=EVENT_SECURITY_ALERT,
            target=target,
            outcome=OUTCOME_REFUSED,
            details={"event_type": event_type, "reason": reason, **(details or {})},
        )


def checkpoints(conn: sqlite3.Connection) -> list[Checkpoint]:
    """The checkpoints the center signed, by sequence number."""
    return [
        Checkpoint(int(r["seq"]), str(r["hash"]), str(r["at"]), str(r["signature"]))
        for r in conn.execute("SELECT * FROM audit_checkpoints ORDER BY seq")
    ]


def read_log(
    conn: sqlite3.Connection,
    *,
    operator: str,
    now: datetime,
    since: datetime | None = None,
    action: str | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """The entries asked for (see :func:`entries`); reading the log is itself recorded (110101)."""
    found = entries(conn, since=since, action=action, limit=limit)
    with transaction(conn):
        record(
            conn,
            at=now,
            operator=operator,
            action="audit",
            event_code=EVENT_AUDIT_LOG_USED,
            target="audit-log",
            details={
                "operation": "show",
                "since": None if since is None else since.isoformat(timespec="seconds"),
                "filter_action": action,
                "entries": len(found),
            },
        )
    return found
