"""Security alerts (DICOM PS3.15 110113) for tampering the center's own checks detect.

Import and delivery refuse what arrives from outside with an alert (:mod:`center.core.importer`,
:mod:`center.core.outbox`); this module records what the center finds altered afterwards, in
what it issued or keeps. The alert's ``check`` detail says which check failed:

``receipt-verification``  `center receipt verify`: a receipt whose signature does not verify or
                          is another key's than this center's (or an enrolled device's), that
                          differs from the copy the center recorded, whose audit checkpoint is
                          forged or no longer in the log, or whose study lists do not match
                          the instances they list;
``audit-chain``           `center audit verify`: entries edited, deleted, inserted or reordered;
``audit-checkpoint``      `center audit verify`: only signed checkpoints see it (the history
                          after an edit was recomputed), or a checkpoint's signature fails;
``archive-check``         `center check`: the audit log's problems above, found by a fixity run.

Not alerts, because they prove no one's hand: a receipt without its ``.sig`` file or with an
unreadable issuer key (an incomplete copy), listed instances no longer stored (a purge after
expiry does that), and objects missing, truncated or re-hashing to another sha256 in the store
(bit rot looks the same): those stay check findings (110103, outcome ``findings``).

An alert is appended in the transaction that records the check itself, so both are durable
before the command reports the failure. It chains onto the last stored row as it is: it neither
repairs nor hides a broken chain, and the next verification names the same tampering again.
Details carry no patient data: receipt ids the center issued (or a hashed label of the file
name), audit sequence numbers and problem kinds, check names.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from center.core import audit

if TYPE_CHECKING:
    from center.core.auditverify import AuditProblem

RECEIPT_VERIFICATION = "receipt-verification"
AUDIT_CHAIN = "audit-chain"
AUDIT_CHECKPOINT = "audit-checkpoint"
ARCHIVE_CHECK = "archive-check"

# Problems named one by one in an alert; their total count is always given.
NAMED_PROBLEMS = 20


def receipt_alert(
    conn: sqlite3.Connection,
    *,
    at: datetime,
    operator: str,
    target: str,
    failed: Sequence[str],
    body: bytes,
) -> audit.AuditEntry | None:
    """Alert on a receipt whose checks *failed* proving tampering, if any; inside a transaction."""
    tampered = sorted(set(failed))
    if not tampered:
        return None
    return _alert(
        conn,
        at=at,
        operator=operator,
        action="receipt",
        target=target,
        check=RECEIPT_VERIFICATION,
        reason=f"receipt verification failed: {', '.join(tampered)}",
        details={
            "event_type": audit.EVENT_TYPE_NODE_AUTHENTICATION,
            "failed": tampered,
            "file_sha256": hashlib.sha256(body).hexdigest(),
        },
    )


def audit_alert(
    conn: sqlite3.Connection,
    problems: Sequence[AuditProblem],
    *,
    at: datetime,
    operator: str,
    action: str,
    check: str,
) -> audit.AuditEntry | None:
    """Alert on the audit log's *problems* (found by *check*), if any; inside its transaction."""
    if not problems:
        return None
    kinds = sorted({p.kind for p in problems})
    return _alert(
        conn,
        at=at,
        operator=operator,
        action=action,
        target="audit-log",
        check=check,
        reason=f"the audit log was altered: {len(problems)} problem(s) ({', '.join(kinds)})",
        details={
            "kinds": kinds,
            "problems": len(problems),
            "entries": [{"seq": p.seq, "kind": p.kind} for p in problems[:NAMED_PROBLEMS]],
        },
    )


def _alert(
    conn: sqlite3.Connection,
    *,
    at: datetime,
    operator: str,
    action: str,
    target: str,
    check: str,
    reason: str,
    details: dict[str, Any],
) -> audit.AuditEntry:
    return audit.record(
        conn,
        at=at,
        operator=operator,
        action=action,
        event_code=audit.EVENT_SECURITY_ALERT,
        target=target,
        outcome=audit.OUTCOME_FINDINGS,
        details={"check": check, "reason": reason, **details},
    )
