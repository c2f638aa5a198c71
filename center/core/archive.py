"""The center archive: its folder, keys, catalog and object store.

Layout::

    <archive>/center.toml                  center name, fingerprint (no secrets)
    <archive>/center-card.json             public card for couriers
    <archive>/keys/center-keys.json        primary age identity + Ed25519 signing seed,
                                           sealed with the center passphrase (scrypt)
    <archive>/ESCROW-identity-TAKE-OFFLINE.age
                                           escrow age identity in age's passphrase format:
                                           move it offline; `age -d` opens it without us
    <archive>/catalog.sqlite               catalog (catalog.py)
    <archive>/objects/ab/cd/<sha256>       content-addressed plaintext objects (store.py)
    <archive>/tmp/                         temp files on the same filesystem as objects/
    <archive>/quarantine/                  objects that failed verification, with reports
    <archive>/receipts/<facility>/         storage receipts as delivered
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from center.core.catalog import open_catalog
from center.core.lock import maintenance_lock
from center.core.store import ObjectStore
from common.cards import CenterCard, load_center_card, write_card
from common.crypto import (
    age_passphrase_encrypt,
    generate_age_keypair,
    generate_signing_seed,
    open_secret,
    public_key,
    read_sealed_public,
    recipient_of,
    seal_secret,
)
from common.environment import Environment
from common.errors import AlreadyInitialised, ArchiveBusy, ConfigError, KeyFileError, NotInitialised
from common.fsio import atomic_write, remove_temp_files

KEY_PURPOSE = "center-keys"
ESCROW_FILE = "ESCROW-identity-TAKE-OFFLINE.age"


@dataclass(frozen=True)
class ArchivePaths:
    root: Path

    config = property(lambda self: self.root / "center.toml")
    card = property(lambda self: self.root / "center-card.json")
    keys = property(lambda self: self.root / "keys" / "center-keys.json")
    escrow = property(lambda self: self.root / ESCROW_FILE)
    catalog = property(lambda self: self.root / "catalog.sqlite")
    objects = property(lambda self: self.root / "objects")
    tmp = property(lambda self: self.root / "tmp")
    quarantine = property(lambda self: self.root / "quarantine")
    receipts = property(lambda self: self.root / "receipts")


@dataclass(frozen=True)
class CenterKeys:
    """The center's secrets, open for the duration of one command."""

    identity: str
    signing_seed: bytes


@dataclass
class Archive:
    paths: ArchivePaths
    card: CenterCard
    conn: sqlite3.Connection
    store: ObjectStore

    def unlock(self, passphrase: str) -> CenterKeys:
        secret = open_secret(self.paths.keys.read_bytes(), passphrase, purpose=KEY_PURPOSE)
        try:
            doc = json.loads(secret)
            keys = CenterKeys(str(doc["age_identity"]), bytes.fromhex(doc["ed25519_seed"]))
        except (ValueError, KeyError) as exc:
            raise KeyFileError(f"{self.paths.keys} holds a malformed key") from exc
        if (
            recipient_of(keys.identity) != self.card.primary_recipient
            or public_key(keys.signing_seed) != self.card.signing_public
        ):
            raise KeyFileError(f"{self.paths.keys} does not match {self.paths.card}")
        return keys


@dataclass(frozen=True)
class InitResult:
    card: CenterCard
    card_path: Path
    escrow_path: Path


def init_archive(
    root: Path, *, center_name: str, passphrase: str, escrow_passphrase: str, env: Environment
) -> InitResult:
    """Create an archive with fresh keys; the escrow identity goes to a file to take offline."""
    paths = ArchivePaths(root)
    if paths.config.exists() or paths.keys.exists():
        raise AlreadyInitialised(f"an archive already exists in {root}")
    if passphrase == escrow_passphrase:
        raise ConfigError(
            "the escrow passphrase must differ from the center passphrase",
            hint="Choose a separate escrow passphrase and keep it with the escrow file, offline.",
        )
    for folder in (
        root,
        paths.keys.parent,
        paths.objects,
        paths.tmp,
        paths.quarantine,
        paths.receipts,
    ):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    primary, escrow = generate_age_keypair(), generate_age_keypair()
    seed = generate_signing_seed()
    public = public_key(seed)
    secret = json.dumps({"age_identity": primary.identity, "ed25519_seed": seed.hex()}).encode()
    atomic_write(
        paths.keys,
        seal_secret(
            secret, passphrase, purpose=KEY_PURPOSE, public=public.hex(), log_n=env.kdf_log_n
        ),
        mode=0o600,
    )
    escrow_text = f"# clinic-archive escrow identity for {escrow.recipient}\n{escrow.identity}\n"
    atomic_write(
        paths.escrow, age_passphrase_encrypt(escrow_text.encode(), escrow_passphrase), mode=0o600
    )
    card = CenterCard(
        center_name=center_name,
        primary_recipient=primary.recipient,
        escrow_recipient=escrow.recipient,
        signing_public=public,
        created=env.now().isoformat(timespec="seconds"),
    )
    write_card(paths.card, card, seed)
    atomic_write(
        paths.config,
        (
            f"center_name = {json.dumps(center_name)}\n"
            f"fingerprint = {json.dumps(card.fingerprint)}\n"
        ).encode(),
    )
    open_catalog(paths.catalog).close()
    return InitResult(card, paths.card, paths.escrow)


@contextlib.contextmanager
def open_archive(root: Path) -> Iterator[Archive]:
    """Open an existing archive; temp files of an interrupted command are removed."""
    paths = ArchivePaths(root)
    if not paths.config.exists():
        raise NotInitialised(f"no archive in {root}", hint="Run `center init ARCHIVE` first.")
    try:
        pinned = str(tomllib.loads(paths.config.read_text("utf-8"))["fingerprint"])
    except (tomllib.TOMLDecodeError, KeyError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{paths.config} is damaged ({exc})") from exc
    card = load_center_card(paths.card.read_bytes(), str(paths.card))
    if (
        card.fingerprint != pinned
        or read_sealed_public(paths.keys.read_bytes(), purpose=KEY_PURPOSE)
        != card.signing_public.hex()
    ):
        raise KeyFileError(f"{paths.card} or {paths.keys} was replaced: fingerprints differ")
    _sweep_temp_files(paths)
    conn = open_catalog(paths.catalog)
    try:
        yield Archive(paths, card, conn, ObjectStore(paths.objects))
    finally:
        conn.close()


def _sweep_temp_files(paths: ArchivePaths) -> None:
    """Remove temp files an interrupted command left in tmp/, unless a maintenance command
    (import, check, apply, purge) is running: it owns temp files there for its whole run."""
    with contextlib.suppress(ArchiveBusy), maintenance_lock(paths.root, "clean temporary files"):
        remove_temp_files(paths.tmp)
