"""The courier device: its home folder, keys, operator and the center card it trusts.

Home layout (on the laptop's internal disk, never on the drive)::

    <home>/device.toml          operator name, device id, center fingerprint (no secrets)
    <home>/device-key.json      Ed25519 seed + age identity, sealed with the passphrase (scrypt)
    <home>/device-card.json     public card to give to the center for enrolment
    <home>/center-card.json     the center's public card (recipients, signing key)
    <home>/journal.sqlite       the pull journal (see journal.py)

The device's age identity decrypts only what the center sends back to this device (receipts in
the drive's outbox); bundles are encrypted to the center's recipients, which the device cannot
decrypt.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from common.cards import (
    CenterCard,
    DeviceCard,
    device_id_for,
    load_center_card,
    write_card,
)
from common.crypto import (
    derive_key,
    generate_age_keypair,
    generate_signing_seed,
    open_secret,
    public_key,
    read_sealed_public,
    recipient_of,
    seal_secret,
)
from common.environment import Environment
from common.errors import AlreadyInitialised, ConfigError, KeyFileError, NotInitialised
from common.fsio import atomic_write

KEY_PURPOSE = "courier-device"


@dataclass(frozen=True)
class CourierHome:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "device.toml"

    @property
    def key(self) -> Path:
        return self.root / "device-key.json"

    @property
    def device_card(self) -> Path:
        return self.root / "device-card.json"

    @property
    def center_card(self) -> Path:
        return self.root / "center-card.json"

    @property
    def journal(self) -> Path:
        return self.root / "journal.sqlite"


@dataclass(frozen=True)
class Device:
    """A device's public configuration, loaded without the passphrase."""

    home: CourierHome
    device_id: str
    operator: str
    signing_public: bytes
    center: CenterCard


@dataclass(frozen=True)
class UnlockedDevice:
    """A device whose secret key is open for the duration of one command."""

    device: Device
    signing_seed: bytes
    age_identity: str

    def journal_key(self) -> bytes:
        """Key that seals private journal columns and keys its lookups (HKDF of the seed)."""
        return derive_key(self.signing_seed, "courier-journal-v1")


def init_device(
    home: CourierHome, *, operator: str, center_card: bytes, passphrase: str, env: Environment
) -> DeviceCard:
    """Create the device's keys, record its operator, import and pin the center's card."""
    if home.key.exists():
        raise AlreadyInitialised(f"a courier device already exists in {home.root}")
    if not operator.strip():
        raise ConfigError("the operator name is empty", hint="Pass --operator 'Your Name'.")
    center = load_center_card(center_card, "the center card")
    home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    seed = generate_signing_seed()
    age = generate_age_keypair()
    public = public_key(seed)
    secret = json.dumps({"ed25519_seed": seed.hex(), "age_identity": age.identity}).encode()
    sealed = seal_secret(
        secret, passphrase, purpose=KEY_PURPOSE, public=public.hex(), log_n=env.kdf_log_n
    )
    card = DeviceCard(
        device_id=device_id_for(public),
        operator=operator.strip(),
        signing_public=public,
        recipient=age.recipient,
        created=env.now().isoformat(timespec="seconds"),
    )
    atomic_write(home.center_card, center_card)
    atomic_write(home.key, sealed, mode=0o600)
    write_card(home.device_card, card, seed)
    config = (
        f"operator = {json.dumps(card.operator)}\n"
        f"device_id = {json.dumps(card.device_id)}\n"
        f"center_fingerprint = {json.dumps(center.fingerprint)}\n"
        f"created = {json.dumps(card.created)}\n"
    )
    atomic_write(home.config, config.encode())
    return card


def load_device(home: CourierHome) -> Device:
    """The device's public configuration; the center card must still match the pinned one."""
    if not home.config.exists() or not home.key.exists():
        raise NotInitialised(
            f"no courier device in {home.root}",
            hint="Run `courier init --operator NAME --center-card FILE` first.",
        )
    try:
        config = tomllib.loads(home.config.read_text("utf-8"))
        operator, device_id = str(config["operator"]), str(config["device_id"])
        pinned = str(config["center_fingerprint"])
    except (tomllib.TOMLDecodeError, KeyError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{home.config} is damaged ({exc})") from exc
    center = load_center_card(home.center_card.read_bytes(), str(home.center_card))
    if center.fingerprint != pinned:
        raise KeyFileError(
            f"{home.center_card} is not the center card this device was set up with",
            hint="Someone replaced the center card; restore it and report this to the center.",
        )
    public = bytes.fromhex(read_sealed_public(home.key.read_bytes(), purpose=KEY_PURPOSE))
    if device_id_for(public) != device_id:
        raise KeyFileError(f"{home.key} does not belong to device {device_id}")
    return Device(home, device_id, operator, public, center)


def unlock(device: Device, passphrase: str) -> UnlockedDevice:
    """Open the device key with *passphrase* (PassphraseError if wrong)."""
    secret = open_secret(device.home.key.read_bytes(), passphrase, purpose=KEY_PURPOSE)
    try:
        doc = json.loads(secret)
        seed = bytes.fromhex(doc["ed25519_seed"])
        identity = str(doc["age_identity"])
    except (ValueError, KeyError) as exc:
        raise KeyFileError(f"{device.home.key} holds a malformed key") from exc
    if public_key(seed) != device.signing_public:
        raise KeyFileError(f"{device.home.key} holds a key that does not match its public half")
    recipient_of(identity)
    return UnlockedDevice(device, seed, identity)
