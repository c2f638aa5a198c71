"""Public cards: the center's (given to couriers) and a courier device's (given to the center).

A card is a small self-signed JSON file holding only public material: age recipients, the
Ed25519 signing public key and its fingerprint. The self-signature catches damage and edits;
authenticity comes from comparing the fingerprint out of band (printed by `center init`, read
out by the center when a courier is set up, and printed on every receipt).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.canonical import canonical_json
from common.crypto import check_recipient, fingerprint, sign, verify_signature
from common.errors import CardError
from common.fsio import atomic_write

CARD_VERSION = 1
SIGNATURE_CONTEXT = b"clinic-archive card v1\0"


@dataclass(frozen=True)
class CenterCard:
    center_name: str
    primary_recipient: str
    escrow_recipient: str
    signing_public: bytes
    created: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signing_public)

    @property
    def recipients(self) -> list[str]:
        """Every object is encrypted to both: the primary and the offline escrow."""
        return [self.primary_recipient, self.escrow_recipient]


@dataclass(frozen=True)
class DeviceCard:
    device_id: str
    operator: str
    signing_public: bytes
    recipient: str
    created: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signing_public)


def device_id_for(signing_public: bytes) -> str:
    """The device id derived from its key: ``courier-`` and the first 8 fingerprint digits."""
    return "courier-" + fingerprint(signing_public).replace("-", "")[:8]


def _body(card: CenterCard | DeviceCard) -> dict[str, Any]:
    body = asdict(card)
    body["signing_public"] = base64.b64encode(card.signing_public).decode()
    body["kind"] = "center-card" if isinstance(card, CenterCard) else "device-card"
    body["version"] = CARD_VERSION
    body["fingerprint"] = card.fingerprint
    return body


def card_bytes(card: CenterCard | DeviceCard, signing_seed: bytes) -> bytes:
    """The card file's bytes, self-signed with the matching private key."""
    body = _body(card)
    signature = sign(signing_seed, SIGNATURE_CONTEXT + canonical_json(body))
    body["signature"] = base64.b64encode(signature).decode()
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def write_card(path: Path, card: CenterCard | DeviceCard, signing_seed: bytes) -> None:
    atomic_write(path, card_bytes(card, signing_seed))


def _load(data: bytes, kind: str, source: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise TypeError("not an object")
        signature = base64.b64decode(doc.pop("signature"), validate=True)
        public = base64.b64decode(doc["signing_public"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise CardError(f"{source} is not a card file") from exc
    if doc.get("kind") != kind:
        raise CardError(f"{source} is a {doc.get('kind')!r}, expected a {kind}")
    if doc.get("version") != CARD_VERSION:
        raise CardError(f"{source} has card version {doc.get('version')!r}, expected 1")
    if not verify_signature(public, SIGNATURE_CONTEXT + canonical_json(doc), signature):
        raise CardError(f"{source} has been altered: its self-signature does not match")
    if doc.get("fingerprint") != fingerprint(public):
        raise CardError(f"{source} states a fingerprint that is not its key's")
    doc["signing_public"] = public
    return doc


def load_center_card(data: bytes, source: str = "the center card") -> CenterCard:
    doc = _load(data, "center-card", source)
    try:
        card = CenterCard(
            center_name=str(doc["center_name"]),
            primary_recipient=check_recipient(str(doc["primary_recipient"])),
            escrow_recipient=check_recipient(str(doc["escrow_recipient"])),
            signing_public=doc["signing_public"],
            created=str(doc["created"]),
        )
    except (KeyError, ValueError) as exc:
        raise CardError(f"{source} lacks a valid field: {exc}") from exc
    return card


def load_device_card(data: bytes, source: str = "the device card") -> DeviceCard:
    doc = _load(data, "device-card", source)
    try:
        card = DeviceCard(
            device_id=str(doc["device_id"]),
            operator=str(doc["operator"]),
            signing_public=doc["signing_public"],
            recipient=check_recipient(str(doc["recipient"])),
            created=str(doc["created"]),
        )
    except (KeyError, ValueError) as exc:
        raise CardError(f"{source} lacks a valid field: {exc}") from exc
    if card.device_id != device_id_for(card.signing_public):
        raise CardError(f"{source} names a device id that does not match its key")
    return card
