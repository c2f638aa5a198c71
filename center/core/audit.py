"""The center's tamper-evident audit log (DESIGN.md s10).

Append-only and hash-chained: ``h_i = sha256("audit-v1\\0" || h_{i-1} || canonical_json(e_i))``
with ``h_0`` = 32 zero bytes, where ``e_i`` holds the entry's sequence number, time, operator,
action, DICOM PS3.15 event code (A.5.3 / CID 400 "Audit Event ID"), target, outcome and
details. Signed checkpoints (Ed25519 by the center key over seq and hash) travel on storage
receipts, so a history rewritten afterwards is detectable by someone holding an old receipt.

:func:`record` must be called inside the caller's transaction, so an action and its audit
entry commit together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common import hashchain

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


def _row_entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        seq=int(row["seq"]),
        at=str(row["at"]),
        operator=str(row["operator"]),
        action=str(row["action"]),
        event_code=str(row["event_code"]),
        target=str(row["target"]),
        outcome=str(row["outcome"]),
        details=json.loads(row["details"]),
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
    since: str | None = None,
    action: str | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    sql, params = "SELECT * FROM audit WHERE 1 = 1", []
    if since:
        sql += " AND at >= ?"
        params.append(since)
    if action:
        sql += " AND action = ?"
        params.append(action)
    sql += " ORDER BY seq"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [_row_entry(r) for r in conn.execute(sql, params)]


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    kind: str  # edited | deleted | inserted | reordered | broken-link | checkpoint
    detail: str


@dataclass
class AuditVerifyReport:
    entries: int = 0
    checkpoints: int = 0
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _with_seq(entry: AuditEntry, seq: int) -> dict[str, Any]:
    return {**entry.content(), "seq": seq}


def verify_chain(conn: sqlite3.Connection, center_public: bytes) -> AuditVerifyReport:
    """Recompute the chain and check every checkpoint; name each problem found."""
    report = AuditVerifyReport()
    rows = [_row_entry(r) for r in conn.execute("SELECT * FROM audit ORDER BY seq")]
    report.entries = len(rows)
    running, expected_seq = GENESIS.hex(), 1
    heads: dict[int, str] = {}
    for entry in rows:
        if entry.seq > expected_seq:
            report.problems.append(
                AuditProblem(
                    expected_seq, "deleted", f"entries {expected_seq}..{entry.seq - 1} are missing"
                )
            )
        intact = chain_hash(entry.prev_hash, entry.content()) == entry.hash
        if not intact:
            if chain_hash(entry.prev_hash, _with_seq(entry, entry.seq - 1)) == entry.hash:
                report.problems.append(
                    AuditProblem(
                        entry.seq, "inserted", "renumbered: an entry was inserted before it"
                    )
                )
            elif any(
                chain_hash(entry.prev_hash, _with_seq(entry, other.seq)) == entry.hash
                for other in rows
                if other.seq != entry.seq
            ):
                report.problems.append(
                    AuditProblem(entry.seq, "reordered", "holds another position's entry")
                )
            else:
                report.problems.append(
                    AuditProblem(entry.seq, "edited", "content does not match its hash")
                )
        elif entry.prev_hash != running and entry.seq == expected_seq:
            report.problems.append(
                AuditProblem(entry.seq, "broken-link", "does not follow the entry before it")
            )
        running = entry.hash
        heads[entry.seq] = entry.hash
        expected_seq = entry.seq + 1
    for row in conn.execute("SELECT * FROM audit_checkpoints ORDER BY seq"):
        report.checkpoints += 1
        cp = Checkpoint(int(row["seq"]), str(row["hash"]), str(row["at"]), str(row["signature"]))
        if not checkpoint_valid(cp, center_public):
            report.problems.append(AuditProblem(cp.seq, "checkpoint", "signature is invalid"))
        elif heads.get(cp.seq) != cp.hash:
            report.problems.append(
                AuditProblem(
                    cp.seq, "checkpoint", "the signed checkpoint does not match the chain here"
                )
            )
    return report
