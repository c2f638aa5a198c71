"""Checking the courier's visit log that travels in each bundle (contract C4).

The courier keeps a hash chain of its visits (:mod:`common.hashchain`, domain
``courier-log-v1``), signed at checkpoints by the device key. Each bundle's reception log
carries ``courier_log``: the checkpoint of the device's previous bundle (``base``), every entry
after it up to this bundle's visit, and a signed checkpoint of the result. The center:

* recomputes the chain from the base and checks the checkpoint's signature with the device
  key, and that the last entry is this bundle's visit (else ``courier-log-invalid``);
* compares every position it has seen before for that device (table ``courier_checkpoints``):
  a different hash at the same position means the log was rewritten or the key is used on two
  laptops (``courier-log-forked``). Both refusals are security alerts;
* accepts a base it has not seen (bundles imported out of order) and says so.

Entries hold no patient data: counts, ids, the operator's name and times.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from common import hashchain
from common.errors import CourierLogForked, CourierLogInvalid

COURIER_LOG_DOMAIN = b"courier-log-v1\0"
COURIER_CHECKPOINT_CONTEXT = b"clinic-archive courier checkpoint v1\0"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

COURIER_LOG_MIGRATIONS = [
    (
        "courierlog-0001-checkpoints",
        """
        CREATE TABLE courier_checkpoints (
            device_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL,
            bundle_id TEXT NOT NULL,
            PRIMARY KEY (device_id, seq)
        )
        """,
    ),
]

FIRST, EXTENDS, BASE_UNKNOWN = "first", "extends", "base-unknown"


@dataclass(frozen=True)
class CourierLogCheck:
    status: str
    note: str
    positions: list[tuple[int, str]] = field(default_factory=list)  # (seq, hash) proven

    @property
    def checkpoint_seq(self) -> int | None:
        return self.positions[-1][0] if self.positions else None


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CourierLogInvalid(f"the courier log's {what} is not a non-negative integer")
    return value


def _hex(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise CourierLogInvalid(f"the courier log's {what} is not a sha256 in hex")
    return value


def _chain(log: Any) -> tuple[list[tuple[int, str]], dict[str, Any], dict[str, Any]]:
    """The (seq, hash) positions from the base to the checkpoint; the checkpoint; last content."""
    if not isinstance(log, dict):
        raise CourierLogInvalid("the courier log is not a JSON object")
    base, entries, checkpoint = log.get("base"), log.get("entries"), log.get("checkpoint")
    if not isinstance(base, dict) or not isinstance(checkpoint, dict):
        raise CourierLogInvalid("the courier log lacks its base or its checkpoint")
    if not isinstance(entries, list) or not entries:
        raise CourierLogInvalid("the courier log holds no entry, not even this bundle's visit")
    seq, prev = _int(base.get("seq"), "base seq"), _hex(base.get("hash"), "base hash")
    if seq == 0 and prev != hashchain.GENESIS_HEX:
        raise CourierLogInvalid("the courier log starts from position 0 with a non-zero hash")
    positions = [(seq, prev)]
    content: dict[str, Any] = {}
    for item in entries:
        raw = item.get("content") if isinstance(item, dict) else None
        if not isinstance(raw, dict) or raw.get("seq") != seq + 1:
            raise CourierLogInvalid(f"courier log entry after position {seq} is out of sequence")
        content = raw
        seq, prev = seq + 1, hashchain.chain_hash(COURIER_LOG_DOMAIN, prev, content)
        if item.get("hash") != prev:
            raise CourierLogInvalid(f"courier log entry {seq} does not match its hash")
        positions.append((seq, prev))
    return positions, checkpoint, content


def check_courier_log(
    conn: sqlite3.Connection,
    *,
    device_id: str,
    device_public: bytes,
    bundle_id: str,
    facility_id: str,
    reception: dict[str, Any],
) -> CourierLogCheck:
    """Check the courier log of a bundle's reception log; raise the refusal if it fails."""
    if "courier_log" not in reception:
        # Every courier of format v1 writes its log: a bundle without one hides its history.
        raise CourierLogInvalid("the bundle carries no courier log")
    positions, checkpoint, last = _chain(reception["courier_log"])
    seq, digest = positions[-1]
    signature = checkpoint.get("signature")
    if checkpoint.get("seq") != seq or checkpoint.get("hash") != digest:
        raise CourierLogInvalid(f"the courier log's checkpoint is not its last entry ({seq})")
    if not isinstance(signature, str) or not hashchain.checkpoint_valid(
        COURIER_CHECKPOINT_CONTEXT, device_public, seq, digest, signature
    ):
        raise CourierLogInvalid(
            f"the courier log's checkpoint {seq} is not signed by device {device_id}"
        )
    if last.get("bundle_id") != bundle_id or last.get("facility_id") != facility_id:
        raise CourierLogInvalid("the courier log's last entry is not this bundle's visit")
    known = dict(
        conn.execute(
            "SELECT seq, hash FROM courier_checkpoints WHERE device_id = ?", (device_id,)
        ).fetchall()
    )
    for position, value in positions:
        if position in known and known[position] != value:
            raise CourierLogForked(
                f"device {device_id}'s courier log differs at position {position} from what "
                "an earlier bundle showed"
            )
    base_seq = positions[0][0]
    if base_seq == 0:
        return CourierLogCheck(FIRST, f"courier log 1..{seq} verified", positions)
    if base_seq in known:
        return CourierLogCheck(
            EXTENDS, f"courier log extends checkpoint {base_seq} to {seq}", positions
        )
    return CourierLogCheck(
        BASE_UNKNOWN,
        f"courier log {base_seq + 1}..{seq} verified; its base {base_seq} was not seen yet "
        "(bundles imported out of order)",
        positions,
    )


def record_positions(
    conn: sqlite3.Connection, device_id: str, bundle_id: str, check: CourierLogCheck
) -> None:
    """Remember the positions a bundle proved (inside the import's transaction)."""
    conn.executemany(
        "INSERT INTO courier_checkpoints (device_id, seq, hash, bundle_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (device_id, seq) DO NOTHING",
        [(device_id, seq, digest, bundle_id) for seq, digest in check.positions if seq > 0],
    )
