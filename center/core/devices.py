"""The registry of courier devices allowed to sign bundles (DESIGN.md s5).

Enrolling and revoking a device change who may deliver data to the archive: both are recorded
in the audit log as security alerts of type "Security Configuration" (DICOM PS3.15 A.5.3.11,
event 110113, type 110129). A revoked device stays in the registry (its past bundles remain
attributable) and can never be enrolled again: the courier makes a new device instead.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from center.core import audit
from common.cards import DeviceCard, load_device_card
from common.errors import ConfigError, DeviceRevoked, DeviceUnknown
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.archive import Archive

DEVICE_MIGRATIONS = [
    (
        "devices-0001-revocation",
        """
        CREATE TABLE device_revocations (
            device_id TEXT PRIMARY KEY REFERENCES devices(device_id),
            revoked_by TEXT NOT NULL,
            reason TEXT NOT NULL
        )
        """,
    ),
]

_SELECT = (
    "SELECT d.device_id, d.fingerprint, d.operator, d.recipient, d.status, d.enrolled_at, "
    "d.enrolled_by, d.revoked_at, r.revoked_by, r.reason FROM devices d "
    "LEFT JOIN device_revocations r USING (device_id)"
)


@dataclass(frozen=True)
class EnrolledDevice:
    device_id: str
    fingerprint: str
    operator: str
    recipient: str
    status: str
    enrolled_at: str
    enrolled_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Enrolment:
    card: DeviceCard
    created: bool  # False when the same card was enrolled before


def _device(row: sqlite3.Row | None) -> EnrolledDevice | None:
    return None if row is None else EnrolledDevice(*row)


def enroll(archive: Archive, card_bytes: bytes, *, operator: str, now: datetime) -> Enrolment:
    """Register a device from its card; enrolling the same card again changes nothing.

    A revoked device is refused: revocation is final.
    """
    card = load_device_card(card_bytes, "the device card")
    conn = archive.conn
    with transaction(conn):
        known = find(conn, card.device_id)
        if known is not None and known.status == "revoked":
            raise DeviceRevoked(
                f"device {card.device_id} was revoked on {known.revoked_at} and cannot be "
                "enrolled again",
                hint="The courier creates a new device (`courier init` in a new home) and "
                "brings its card.",
            )
        if known is not None:
            return Enrolment(card, created=False)
        conn.execute(
            "INSERT INTO devices (device_id, fingerprint, operator, signing_public, recipient, "
            "card, enrolled_at, enrolled_by, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active')",
            (
                card.device_id,
                card.fingerprint,
                card.operator,
                card.signing_public,
                card.recipient,
                card_bytes,
                now.isoformat(timespec="seconds"),
                operator,
            ),
        )
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="enroll",
            event_code=audit.EVENT_SECURITY_ALERT,
            target=f"device:{card.device_id}",
            details={
                "event_type": audit.EVENT_TYPE_SECURITY_CONFIGURATION,
                "fingerprint": card.fingerprint,
                "device_operator": card.operator,
            },
        )
    return Enrolment(card, created=True)


def revoke(
    archive: Archive, device: str, *, reason: str, operator: str, now: datetime
) -> EnrolledDevice:
    """Revoke *device* (its id or fingerprint): its bundles are refused from now on."""
    if not reason.strip():
        raise ConfigError(
            "a revocation needs a reason", hint="Pass --reason 'laptop stolen' (or similar)."
        )
    conn = archive.conn
    with transaction(conn):
        known = find(conn, device)
        if known is None:
            raise DeviceUnknown(
                f"no enrolled device has the id or fingerprint {device}",
                hint="List the devices with `center courier list`.",
            )
        if known.status == "revoked":
            return known
        conn.execute(
            "UPDATE devices SET status = 'revoked', revoked_at = ? WHERE device_id = ?",
            (now.isoformat(timespec="seconds"), known.device_id),
        )
        conn.execute(
            "INSERT INTO device_revocations (device_id, revoked_by, reason) VALUES (?, ?, ?)",
            (known.device_id, operator, reason.strip()),
        )
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="revoke",
            event_code=audit.EVENT_SECURITY_ALERT,
            target=f"device:{known.device_id}",
            details={
                "event_type": audit.EVENT_TYPE_SECURITY_CONFIGURATION,
                "fingerprint": known.fingerprint,
                "reason": reason.strip(),
            },
        )
    return replace(
        known,
        status="revoked",
        revoked_at=now.isoformat(timespec="seconds"),
        revoked_by=operator,
        revoke_reason=reason.strip(),
    )


def find(conn: sqlite3.Connection, device: str) -> EnrolledDevice | None:
    """The device with this id or fingerprint, whatever its status."""
    return _device(
        conn.execute(
            f"{_SELECT} WHERE d.device_id = ? OR d.fingerprint = ?", (device, device)
        ).fetchone()
    )


def list_devices(archive: Archive) -> list[EnrolledDevice]:
    rows = archive.conn.execute(f"{_SELECT} ORDER BY d.enrolled_at, d.device_id")
    return [EnrolledDevice(*row) for row in rows]


def require_active(conn: sqlite3.Connection, fingerprint: str) -> EnrolledDevice:
    """The enrolled, active device with *fingerprint*, or DeviceUnknown / DeviceRevoked."""
    device = _device(conn.execute(f"{_SELECT} WHERE d.fingerprint = ?", (fingerprint,)).fetchone())
    if device is None:
        raise DeviceUnknown(f"the bundle is signed by device {fingerprint}, which is not enrolled")
    if device.status != "active":
        raise DeviceRevoked(
            f"the bundle is signed by {device.device_id}, which was revoked on {device.revoked_at}"
        )
    return device


def signing_key(conn: sqlite3.Connection, device_id: str) -> bytes | None:
    """The Ed25519 public key of an enrolled *active* device, or None."""
    row = conn.execute(
        "SELECT signing_public FROM devices WHERE device_id = ? AND status = 'active'",
        (device_id,),
    ).fetchone()
    return None if row is None else bytes(row[0])


def active_recipients(conn: sqlite3.Connection) -> list[str]:
    """Age recipients of every active device: outbox files are readable by any of them."""
    rows = conn.execute("SELECT recipient FROM devices WHERE status = 'active' ORDER BY device_id")
    return [str(r[0]) for r in rows]
