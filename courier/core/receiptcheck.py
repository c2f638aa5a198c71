"""`courier receipt verify FILE`: is this receipt exactly what its signer signed, and who is that?

A receipt is ``<id>.json`` (canonical JSON) with a detached ``<id>.json.sig`` (common/receipts.py).
The signature is checked against the public key the receipt names; that proves integrity
only. Authenticity comes from the key: the center card this laptop pinned, this laptop's own
device key, or else a fingerprint the reader must compare with one known independently.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.canonical import canonical_json
from common.crypto import fingerprint
from common.receipts import signer_public, verify_receipt
from courier.core.device import Device

CENTER, THIS_DEVICE, UNKNOWN = "the center this laptop trusts", "this courier device", "unknown"


@dataclass(frozen=True)
class ReceiptCheck:
    path: str
    valid: bool
    problem: str = ""
    receipt_id: str = ""
    kind: str = ""
    issuer: str = ""
    fingerprint: str = ""
    signer: str = UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def json_path(path: Path) -> Path:
    """The ``.json`` of a receipt given any of its three files."""
    name = path.name
    for suffix in (".json.sig", ".html"):
        if name.endswith(suffix):
            return path.with_name(name.removesuffix(suffix) + ".json")
    return path


def check_receipt(path: Path, device: Device | None) -> ReceiptCheck:
    """Check the receipt at *path* (its .json, .json.sig or .html)."""
    doc_path = json_path(path)
    try:
        body = doc_path.read_bytes()
        signature = Path(f"{doc_path}.sig").read_bytes()
    except FileNotFoundError as exc:
        return ReceiptCheck(str(doc_path), False, f"{Path(str(exc.filename)).name} is missing")
    try:
        doc = json.loads(body)
        public = signer_public(doc)
    except (ValueError, KeyError, TypeError):
        return ReceiptCheck(str(doc_path), False, "not a receipt (its JSON or issuer is malformed)")
    if not isinstance(doc, dict) or canonical_json(doc) != body:
        return ReceiptCheck(
            str(doc_path), False, "the JSON is not in canonical form: it was edited"
        )
    base = ReceiptCheck(
        str(doc_path),
        False,
        receipt_id=str(doc.get("receipt_id", "")),
        kind=str(doc.get("kind", "")),
        issuer=f"{doc['issuer'].get('name', '')} ({doc['issuer'].get('kind', '')})",
        fingerprint=fingerprint(public),
        signer=_signer(public, device),
    )
    if not verify_receipt(body, signature, public):
        return _with(base, valid=False, problem="the signature does not match the receipt")
    if doc["issuer"].get("kind") == "center" and device is not None and base.signer != CENTER:
        return _with(
            base,
            valid=False,
            problem="it claims to come from the center but is "
            "signed by another key than the center card this laptop trusts",
        )
    return _with(base, valid=True)


def _signer(public: bytes, device: Device | None) -> str:
    if device is None:
        return UNKNOWN
    if public == device.center.signing_public:
        return CENTER
    if public == device.signing_public:
        return THIS_DEVICE
    return UNKNOWN


def _with(check: ReceiptCheck, **changes: Any) -> ReceiptCheck:
    return ReceiptCheck(**{**asdict(check), **changes})
