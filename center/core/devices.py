"""The registry of courier devices allowed to sign bundles (DESIGN.md s5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from center.core.archive import Archive
from common.cards import DeviceCard, load_device_card
from common.errors import DeviceRevoked, DeviceUnknown
from common.sqlitedb import transaction


@dataclass(frozen=True)
class EnrolledDevice:
    device_id: str
    fingerprint: str
    operator: str
    recipient: str
    status: str
    enrolled_at: str


def enroll(archive: Archive, card_bytes: bytes, *, operator: str, now: datetime) -> DeviceCard:
    """Register a device from its card; enrolling the same card again changes nothing."""
    card = load_device_card(card_bytes, "the device card")
    with transaction(archive.conn):
        archive.conn.execute(
            "INSERT INTO devices (device_id, fingerprint, operator, signing_public, recipient, "
            "card, enrolled_at, enrolled_by, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active') "
            "ON CONFLICT (device_id) DO NOTHING",
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
    return card


def list_devices(archive: Archive) -> list[EnrolledDevice]:
    rows = archive.conn.execute(
        "SELECT device_id, fingerprint, operator, recipient, status, enrolled_at FROM devices "
        "ORDER BY enrolled_at, device_id"
    )
    return [EnrolledDevice(*row) for row in rows]


def require_active(archive: Archive, fingerprint: str) -> EnrolledDevice:
    """The enrolled, active device with *fingerprint*, or DeviceUnknown / DeviceRevoked."""
    row = archive.conn.execute(
        "SELECT device_id, fingerprint, operator, recipient, status, enrolled_at FROM devices "
        "WHERE fingerprint = ?",
        (fingerprint,),
    ).fetchone()
    if row is None:
        raise DeviceUnknown(f"the bundle is signed by device {fingerprint}, which is not enrolled")
    device = EnrolledDevice(*row)
    if device.status != "active":
        raise DeviceRevoked(f"the bundle is signed by {device.device_id}, which was revoked")
    return device


def active_recipients(archive: Archive) -> list[str]:
    """Age recipients of every active device: outbox files are readable by any of them."""
    rows = archive.conn.execute("SELECT recipient FROM devices WHERE status = 'active'")
    return [str(r[0]) for r in rows]
