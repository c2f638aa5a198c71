"""`center receipt show|verify`: reading a receipt, and proving what it says.

A receipt is named by its id (the center's copy in ``<archive>/receipts/``) or by the path of
its ``.json`` file (for instance a clinic's copy brought back). Verification checks, each
reported separately:

* ``signature``: the ``.json.sig`` verifies with the issuer's key, and that key is this
  center's (a storage receipt) or an enrolled courier device's (a reception receipt);
* ``center-copy``: the JSON is byte for byte what the center recorded when issuing it;
* ``audit-checkpoint``: the checkpoint printed on it is signed by the center and the audit log
  still holds that hash at that position (else the log was rewritten after the receipt);
* ``instance-lists``: each study's ``instance_list_sha256`` matches the instances it lists;
* ``stored``: every listed instance is still cataloged and its object is in the store.

A failed check that proves an alteration or a foreign signer (all but ``stored``, a missing
``.sig`` and an unreadable issuer key) is also recorded as a security alert
(:mod:`center.core.tamper`), in the transaction that records the verification.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from center.core import audit, tamper
from center.core.search import label
from center.core.storage_receipts import receipt_path, recorded_document
from common.crypto import fingerprint
from common.errors import ReceiptInvalid, ReceiptUnknown
from common.receipts import instance_list_sha256, signer_public, verify_receipt
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.archive import Archive


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    tampered: bool = False  # a failure that proves an alteration or a foreign signer

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class ReceiptVerification:
    path: Path
    document: dict[str, Any]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "receipt_id": self.document.get("receipt_id"),
            "kind": self.document.get("kind"),
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
        }


def locate(archive: Archive, ref: str) -> Path:
    """The JSON file of the receipt *ref* (an id, or a path to its .json or .html)."""
    given = Path(ref)
    if given.is_file():
        json_path = given if given.suffix == ".json" else given.with_suffix(".json")
        if json_path.is_file():
            return json_path
    found = receipt_path(archive, ref)
    if found is None or not found.is_file():
        raise ReceiptUnknown(f"no receipt file {ref} and no receipt with that id at this center")
    return found


def _load(path: Path) -> tuple[bytes, dict[str, Any]]:
    body = path.read_bytes()
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ReceiptInvalid(f"{path.name} is not JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("issuer"), dict):
        raise ReceiptInvalid(f"{path.name} is not a receipt")
    return body, doc


def _target(conn: sqlite3.Connection, doc: dict[str, Any], path: Path) -> str:
    """``receipt:<id>`` for an id this center issued, else a hashed label of the file's name.

    The id inside a file brought from outside is whatever its editor wrote: it is named only
    when the center recorded it.
    """
    receipt_id = doc.get("receipt_id")
    if isinstance(receipt_id, str) and recorded_document(conn, receipt_id) is not None:
        return f"receipt:{receipt_id}"
    return label("receipt-file", path.name)


def _audited(
    conn: sqlite3.Connection, operator: str, now: datetime, target: str, op: str, ok: bool
) -> None:
    """Record the access (110103); inside the caller's transaction."""
    audit.record(
        conn,
        at=now,
        operator=operator,
        action="receipt",
        event_code=audit.EVENT_INSTANCES_ACCESSED,
        target=target,
        outcome=audit.OUTCOME_SUCCESS if ok else audit.OUTCOME_FINDINGS,
        details={"operation": op},
    )


def show_receipt(
    archive: Archive, ref: str, *, operator: str, now: datetime
) -> tuple[Path, dict[str, Any]]:
    """The receipt's file and document (the access is audited)."""
    path = locate(archive, ref)
    _, doc = _load(path)
    with transaction(archive.conn):
        _audited(
            archive.conn, operator, now, f"receipt:{doc.get('receipt_id', path.stem)}", "show", True
        )
    return path, doc


def verify_receipt_file(
    archive: Archive, ref: str, *, operator: str, now: datetime
) -> ReceiptVerification:
    """Run every check on the receipt *ref* (the verification is audited, tampering alerted)."""
    path = locate(archive, ref)
    body, doc = _load(path)
    result = ReceiptVerification(path, doc)
    result.checks.append(_signature(archive, path, body, doc))
    recorded = recorded_document(archive.conn, str(doc.get("receipt_id", "")))
    if recorded is not None:
        same = recorded == body
        detail = "identical" if same else "differs from the center's copy"
        result.checks.append(Check("center-copy", same, detail, not same))
    if isinstance(doc.get("audit_checkpoint"), dict):
        result.checks.append(_checkpoint(archive, doc["audit_checkpoint"]))
    if doc.get("kind") == "storage-receipt":
        result.checks += _instances(archive, doc)
    target = _target(archive.conn, doc, path)
    with transaction(archive.conn):
        _audited(archive.conn, operator, now, target, "verify", result.ok)
        tamper.receipt_alert(
            archive.conn,
            at=now,
            operator=operator,
            target=target,
            failed=[c.name for c in result.checks if c.tampered],
            body=body,
        )
    return result


def _signature(archive: Archive, path: Path, body: bytes, doc: dict[str, Any]) -> Check:
    sig_path = Path(f"{path}.sig")
    if not sig_path.is_file():
        return Check("signature", False, f"{sig_path.name} is missing")
    try:
        public = signer_public(doc)
    except (KeyError, ValueError):
        return Check("signature", False, "the issuer's key is unreadable")
    if not verify_receipt(body, sig_path.read_bytes(), public):
        return Check("signature", False, "does not verify: the receipt was altered", True)
    issuer_kind = doc["issuer"].get("kind")
    if issuer_kind == "center":
        if public != archive.card.signing_public:
            return Check(
                "signature",
                False,
                f"signed by {fingerprint(public)}, not by this center ({archive.card.fingerprint})",
                True,
            )
        return Check("signature", True, f"signed by this center ({archive.card.fingerprint})")
    row = archive.conn.execute(
        "SELECT device_id, status FROM devices WHERE fingerprint = ?", (fingerprint(public),)
    ).fetchone()
    if row is None:
        return Check(
            "signature", False, f"signed by {fingerprint(public)}, an unknown device", True
        )
    return Check("signature", True, f"signed by courier device {row[0]} ({row[1]})")


def _checkpoint(archive: Archive, raw: dict[str, Any]) -> Check:
    try:
        cp = audit.Checkpoint(
            int(raw["seq"]), str(raw["hash"]), str(raw["at"]), str(raw["signature"])
        )
    except (KeyError, TypeError, ValueError):
        return Check("audit-checkpoint", False, "malformed")
    if not audit.checkpoint_valid(cp, archive.card.signing_public):
        return Check("audit-checkpoint", False, f"entry {cp.seq}: not signed by this center", True)
    row = archive.conn.execute("SELECT hash FROM audit WHERE seq = ?", (cp.seq,)).fetchone()
    if row is None or row[0] != cp.hash:
        return Check(
            "audit-checkpoint",
            False,
            f"the audit log no longer holds entry {cp.seq} as signed: it was rewritten",
            True,
        )
    return Check("audit-checkpoint", True, f"entry {cp.seq} is in the audit log as signed")


def _instances(archive: Archive, doc: dict[str, Any]) -> list[Check]:
    listed: list[tuple[str, str]] = []
    bad_lists = []
    for study in doc.get("studies", []):
        pairs = [(str(i["sop_instance_uid"]), str(i["sha256"])) for i in study.get("instances", [])]
        listed += pairs
        if instance_list_sha256(pairs) != study.get("instance_list_sha256"):
            bad_lists.append(
                hashlib.sha256(str(study.get("study_instance_uid")).encode()).hexdigest()[:12]
            )
    lists = Check(
        "instance-lists",
        not bad_lists,
        "match the instances listed"
        if not bad_lists
        else f"{len(bad_lists)} study list(s) do not match (studies {', '.join(bad_lists)})",
        bool(bad_lists),
    )
    gone = 0
    for uid, sha in listed:
        row = archive.conn.execute(
            "SELECT 1 FROM instances WHERE sop_instance_uid = ? AND sha256 = ?", (uid, sha)
        ).fetchone()
        if row is None or not archive.store.exists(sha):
            gone += 1
    stored = Check(
        "stored",
        gone == 0,
        f"all {len(listed)} instances are stored"
        if gone == 0
        else f"{gone} of {len(listed)} listed instances are no longer stored",
    )
    return [lists, stored]
