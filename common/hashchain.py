"""Hash chains and signed checkpoints, shared by the center audit log and the courier log.

``h_i = sha256(domain || h_{i-1} || canonical_json(content_i))`` with ``h_0`` = 32 zero bytes.
A checkpoint is an Ed25519 signature over ``context || "<seq>:<hash hex>"``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from common.canonical import canonical_json
from common.crypto import sign, verify_signature

GENESIS_HEX = bytes(32).hex()


def chain_hash(domain: bytes, prev_hex: str, content: dict[str, Any]) -> str:
    """The hash of an entry with *content* following the entry whose hash is *prev_hex*."""
    return hashlib.sha256(domain + bytes.fromhex(prev_hex) + canonical_json(content)).hexdigest()


def sign_checkpoint(context: bytes, seed: bytes, seq: int, digest: str) -> str:
    """Base64 Ed25519 signature of checkpoint (*seq*, *digest*)."""
    return base64.b64encode(sign(seed, context + f"{seq}:{digest}".encode())).decode()


def checkpoint_valid(context: bytes, public: bytes, seq: int, digest: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return verify_signature(public, context + f"{seq}:{digest}".encode(), raw)
