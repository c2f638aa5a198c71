"""Building courier drives for center tests with the bundle format's own writer.

A :class:`KitDevice` is a courier device reduced to what the center sees: a signing key, an
age identity, a card and the visit log it carries (contract C4). :func:`write_bundle` seals a
bundle of given DICOM files with ``common.bundle.writer``, exactly as bundle format v1 says,
and lets a test bend one thing (a wrong index hash, a non-DICOM object, another center's key,
a courier log edited) to reach each refusal and quarantine path.
"""

from __future__ import annotations

import base64
import copy
import io
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from center.core.courierlog import COURIER_CHECKPOINT_CONTEXT, COURIER_LOG_DOMAIN
from common import hashchain
from common.bundle import format as fmt
from common.bundle.writer import BundleWriter, SealedObject, hash_file
from common.cards import DeviceCard, card_bytes, device_id_for
from common.crypto import (
    AgeKeyPair,
    fingerprint,
    generate_age_keypair,
    generate_signing_seed,
    public_key,
    sign,
)
from common.dicomhdr import read_header
from common.fsio import atomic_write
from tests.conftest import NOW


@dataclass
class KitDevice:
    seed: bytes
    age: AgeKeyPair
    operator: str = "Kit Courier"
    entries: list[dict[str, Any]] = field(default_factory=list)  # {"content", "hash"}
    carried: tuple[int, str] = (0, hashchain.GENESIS_HEX)  # checkpoint of the last bundle

    @property
    def public(self) -> bytes:
        return public_key(self.seed)

    @property
    def device_id(self) -> str:
        return device_id_for(self.public)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def card(self) -> bytes:
        card = DeviceCard(self.device_id, self.operator, self.public, self.age.recipient, "now")
        return card_bytes(card, self.seed)

    def visit(self, content: dict[str, Any]) -> dict[str, Any]:
        """Append a visit to the log; the courier_log a bundle of that visit carries."""
        seq = len(self.entries) + 1
        prev = self.entries[-1]["hash"] if self.entries else hashchain.GENESIS_HEX
        full = {**content, "seq": seq}
        digest = hashchain.chain_hash(COURIER_LOG_DOMAIN, prev, full)
        self.entries.append({"content": full, "hash": digest})
        base_seq, base_hash = self.carried
        log = {
            "base": {"seq": base_seq, "hash": base_hash},
            "entries": copy.deepcopy(self.entries[base_seq:]),
            "checkpoint": {
                "seq": seq,
                "hash": digest,
                "signature": hashchain.sign_checkpoint(
                    COURIER_CHECKPOINT_CONTEXT, self.seed, seq, digest
                ),
            },
        }
        self.carried = (seq, digest)
        return log


def new_device(operator: str = "Kit Courier") -> KitDevice:
    return KitDevice(generate_signing_seed(), generate_age_keypair(), operator)


def init_drive(root: Path) -> Path:
    """A drive folder as `courier drive init` leaves it (bundle format v1)."""
    (root / fmt.BUNDLES_DIR).mkdir(parents=True, exist_ok=True)
    (root / fmt.VOLUME_MARKER).write_text(f"courier-volume {secrets.token_hex(16)}\n")
    return root


EntryEdit = Callable[[int, dict[str, Any]], None]


def write_bundle(
    drive: Path,
    device: KitDevice,
    recipients: list[str],
    files: list[Path],
    *,
    facility: str = "clinic-1",
    now: datetime = NOW,
    courier_log: bool = True,
    edit_entry: EntryEdit | None = None,
    payloads: dict[int, bytes] | None = None,
    object_recipients: dict[int, list[str]] | None = None,
    edit_log: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Seal a bundle of *files* (DICOM) on *drive*; return its folder.

    *edit_entry* changes an index entry (by seq) before sealing; *payloads* replaces an
    object's plaintext; *object_recipients* encrypts one object to other recipients;
    *edit_log* changes the courier log after it was signed.
    """
    bundle_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    writer = BundleWriter.open(drive / fmt.BUNDLES_DIR, bundle_id)
    objects, entries, studies, size = [], [], set(), 0
    for seq, path in enumerate(files, start=1):
        header = read_header(path)
        data = (payloads or {}).get(seq, path.read_bytes())
        to = (object_recipients or {}).get(seq, recipients)
        digest = writer.write_object(seq, io.BytesIO(data), to)
        entry = {
            "seq": seq,
            "path": fmt.object_relpath(seq),
            "sha256": digest.plain_sha256,
            "size": digest.plain_size,
            "source_relpath": f"file{seq:04d}.dcm",
            "header": header.to_dict(),
        }
        if edit_entry is not None:
            edit_entry(seq, entry)
        entries.append(entry)
        objects.append(SealedObject(entry["path"], digest.cipher_sha256, digest.cipher_size))
        studies.add(header.study_instance_uid)
        size += digest.cipher_size
    info = fmt.BagInfo(
        bundle_id=bundle_id,
        device_id=device.device_id,
        device_fingerprint=device.fingerprint,
        device_public_key=device.public,
        facility_id=facility,
        created=now.isoformat(timespec="seconds"),
        object_count=len(files),
        study_count=len(studies),
        payload_bytes=size,
    )
    reception: dict[str, Any] = {
        "kind": "reception-log",
        "operator": device.operator,
        "facility_id": facility,
        "received": now.isoformat(timespec="seconds"),
        "objects": len(files),
        "studies": len(studies),
    }
    if courier_log:
        log = device.visit(
            {
                "at": now.isoformat(timespec="seconds"),
                "facility_id": facility,
                "bundle_id": bundle_id,
                "operator": device.operator,
                "objects": len(files),
                "studies": len(studies),
                "bytes": size,
                "skipped": 0,
            }
        )
        if edit_log is not None:
            edit_log(log)
        reception["courier_log"] = log
    writer.seal(
        info=info,
        objects=objects,
        index_entries=iter(entries),
        reception=reception,
        recipients=recipients,
        signing_seed=device.seed,
    )
    return writer.dir


def resign(bundle: Path, seed: bytes, *, bag_info: dict[str, str] | None = None) -> None:
    """Rewrite bag-info (optionally edited), the tag manifest and the signature with *seed*."""
    if bag_info:
        lines = (bundle / fmt.BAG_INFO).read_text().splitlines()
        for key, value in bag_info.items():
            lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in lines]
        atomic_write(bundle / fmt.BAG_INFO, ("\n".join(lines) + "\n").encode())
    tagmanifest = fmt.render_checksums((n, hash_file(bundle / n)[0]) for n in fmt.TAG_FILES)
    atomic_write(bundle / fmt.TAGMANIFEST, tagmanifest)
    signature = sign(seed, fmt.SIGNATURE_CONTEXT + tagmanifest)
    atomic_write(bundle / fmt.SIGNATURE, base64.b64encode(signature) + b"\n")


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst
