"""Verifying the audit log: recompute the chain and name each entry that was tampered with.

The entries are followed by their hash links (``prev_hash`` -> the entry whose ``hash`` it is),
not by their sequence numbers, so the original order is recovered even when rows were
renumbered. Each problem is named at the sequence number where it is seen:

``edited``     the entry's content no longer gives its hash (at any position);
``deleted``    entries are missing: the next entry links to a hash no row has, or a signed
               checkpoint lies beyond the last entry (the log was cut short);
``inserted``   a row that is not part of the chain (another entry follows its predecessor);
``reordered``  entries that link correctly but sit at other positions than the chain gives;
``checkpoint`` a signed checkpoint whose signature fails, or that the chain contradicts
               (the whole history after an edit was recomputed: only signatures catch that).

Checkpoints come from the archive's own table and, through *extra_checkpoints*, from the
storage receipts the center issued (their copies at the clinics are out of an intruder's reach).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from center.core import audit, tamper
from common.sqlitedb import transaction

EDITED, DELETED, INSERTED, REORDERED, CHECKPOINT = (
    "edited",
    "deleted",
    "inserted",
    "reordered",
    "checkpoint",
)


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    kind: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass
class AuditVerifyReport:
    entries: int = 0
    checkpoints: int = 0
    head_seq: int = 0
    head_hash: str = audit.GENESIS.hex()
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "problems": [p.to_dict() for p in self.problems],
        }


def _verifies(entry: audit.AuditEntry, seq: int) -> bool:
    """Does *entry*'s content, hashed as the entry at position *seq*, give its hash?"""
    return audit.chain_hash(entry.prev_hash, {**entry.content(), "seq": seq}) == entry.hash


class _Walker:
    """Follows hash links from the genesis, assigning each row its position in the chain."""

    def __init__(self, rows: list[audit.AuditEntry]) -> None:
        self.rows = rows
        self.followers: dict[str, list[audit.AuditEntry]] = {}
        for row in rows:
            self.followers.setdefault(row.prev_hash, []).append(row)
        self.depth: dict[int, int] = {}  # row seq -> position in the chain
        self.problems: list[AuditProblem] = []

    def _choose(self, candidates: list[audit.AuditEntry], depth: int) -> audit.AuditEntry:
        # The genuine follower hashes correctly at this position and has followers of its own.
        return min(
            candidates,
            key=lambda r: (not _verifies(r, depth), not self.followers.get(r.hash), r.seq),
        )

    def walk(self, first: audit.AuditEntry, depth: int) -> int:
        """Visit *first* at position *depth* and the chain after it; return the last position."""
        row: audit.AuditEntry | None = first
        while row is not None:
            self.depth[row.seq] = depth
            if not _verifies(row, depth) and not _verifies(row, row.seq):
                self.problems.append(
                    AuditProblem(row.seq, EDITED, "its content does not match its hash")
                )
            waiting = [r for r in self.followers.get(row.hash, []) if r.seq not in self.depth]
            row = self._choose(waiting, depth + 1) if waiting else None
            depth += 1 if row is not None else 0
        return depth

    def run(self) -> int:
        """Walk the whole log; return the position of the last entry reached."""
        last = 0
        genesis = audit.GENESIS.hex()
        starts = self.followers.get(genesis, [])
        if starts:
            last = self.walk(self._choose(starts, 1), 1)
        known = {r.hash for r in self.rows}
        for row in self.rows:
            if row.seq in self.depth or row.prev_hash in known or row.prev_hash == genesis:
                continue
            last = self._resume_after_gap(row, last)
        for row in self.rows:
            if row.seq not in self.depth:
                self.problems.append(
                    AuditProblem(
                        row.seq, INSERTED, "not part of the chain: another entry follows its link"
                    )
                )
        return last

    def _resume_after_gap(self, row: audit.AuditEntry, last: int) -> int:
        """*row* links to a hash no entry has: entries before it were deleted (or it was edited)."""
        limit = max(row.seq, last) + len(self.rows) + 1
        original = next((s for s in range(last + 1, limit + 1) if _verifies(row, s)), None)
        if original is None:
            self.problems.append(
                AuditProblem(row.seq, EDITED, "its link to the entry before it was changed")
            )
            return self.walk(row, last + 1)
        if original > last + 1:
            gap = (
                f"entry {last + 1}"
                if original == last + 2
                else f"entries {last + 1}..{original - 1}"
            )
            self.problems.append(AuditProblem(last + 1, DELETED, f"{gap} missing"))
        return self.walk(row, original)


def _reordered(rows: list[audit.AuditEntry], depth: dict[int, int]) -> list[AuditProblem]:
    """Rows whose rank by sequence number differs from their rank in the chain."""
    placed = [r.seq for r in rows if r.seq in depth]
    by_chain = sorted(placed, key=lambda seq: depth[seq])
    return [
        AuditProblem(seq, REORDERED, f"holds the entry of chain position {depth[seq]}")
        for seq, chain_seq in zip(placed, by_chain, strict=True)
        if seq != chain_seq
    ]


def verify_chain(
    conn: sqlite3.Connection,
    center_public: bytes,
    *,
    extra_checkpoints: Iterable[audit.Checkpoint] = (),
) -> AuditVerifyReport:
    """Recompute the chain and check every signed checkpoint; name each problem found."""
    rows = [audit.row_entry(r) for r in conn.execute("SELECT * FROM audit ORDER BY seq")]
    report = AuditVerifyReport(entries=len(rows))
    walker = _Walker(rows)
    last = walker.run()
    report.problems += walker.problems + _reordered(rows, walker.depth)
    hash_at = {walker.depth[r.seq]: r.hash for r in rows if r.seq in walker.depth}
    if rows:
        report.head_seq, report.head_hash = last, hash_at.get(last, report.head_hash)
    seen: set[tuple[int, str, str]] = set()
    cut_short = False
    for cp in [*audit.checkpoints(conn), *extra_checkpoints]:
        if (cp.seq, cp.hash, cp.signature) in seen:
            continue
        seen.add((cp.seq, cp.hash, cp.signature))
        report.checkpoints += 1
        if not audit.checkpoint_valid(cp, center_public):
            report.problems.append(AuditProblem(cp.seq, CHECKPOINT, "signature is invalid"))
        elif cp.seq > last:
            cut_short = True
        elif hash_at.get(cp.seq) != cp.hash:
            report.problems.append(
                AuditProblem(
                    cp.seq, CHECKPOINT, "the signed checkpoint does not match the chain here"
                )
            )
    if cut_short:
        report.problems.append(
            AuditProblem(
                last + 1, DELETED, "the log ends before a signed checkpoint: entries were removed"
            )
        )
    report.problems.sort(key=lambda p: (p.seq, p.kind))
    return report


def verify_log(
    conn: sqlite3.Connection,
    center_public: bytes,
    *,
    operator: str,
    now: datetime,
    extra_checkpoints: Iterable[audit.Checkpoint] = (),
) -> AuditVerifyReport:
    """Verify the chain, then record that it was verified (110101) with the result.

    Problems are also recorded as a security alert (110113) in the same transaction: check
    ``audit-checkpoint`` when only signed checkpoints saw them, else ``audit-chain``. Both
    entries chain onto the last stored row as it is, so a broken chain stays broken.
    """
    report = verify_chain(conn, center_public, extra_checkpoints=extra_checkpoints)
    only_checkpoints = all(p.kind == CHECKPOINT for p in report.problems)
    with transaction(conn):
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="audit",
            event_code=audit.EVENT_AUDIT_LOG_USED,
            target="audit-log",
            outcome=audit.OUTCOME_SUCCESS if report.ok else audit.OUTCOME_FINDINGS,
            details={
                "operation": "verify",
                "entries": report.entries,
                "problems": len(report.problems),
            },
        )
        tamper.audit_alert(
            conn,
            report.problems,
            at=now,
            operator=operator,
            action="audit",
            check=tamper.AUDIT_CHECKPOINT if only_checkpoints else tamper.AUDIT_CHAIN,
        )
    return report
