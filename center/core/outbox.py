"""The drive outbox: signed documents the center sends to a clinic by courier (contracts C1, C2).

A document (a storage receipt, an expiry notice ...) is three files written by
:func:`common.receipts.write_receipt`: ``<id>.json`` (canonical JSON), ``<id>.json.sig`` and
``<id>.html``. :func:`queue_document` keeps them under ``<archive>/outbox/<facility>/`` and lists
them in ``outbox_documents``. :func:`push_outbox` writes every queued, undelivered document onto
a courier drive as ``<drive>/outbox/<facility>/<file>.age``, encrypted to every active courier
device, so whichever courier visits the clinic next can deliver it.

The courier confirms each delivery with a confirmation signed by its device in
``<drive>/returns/<facility>/delivery-<id>.json`` (+ ``.sig``). :func:`read_confirmations`
checks each against the enrolled device and records the delivery; a confirmation that does not
verify is refused and recorded as a security alert. Nothing on the drive is deleted here.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from center.core import audit
from center.core.devices import signing_key
from common.bundle import format as fmt
from common.canonical import canonical_json
from common.crypto import encrypt_bytes, fingerprint
from common.errors import DriveError, DriveFull
from common.fsio import atomic_write, remove_temp_files
from common.receipts import verify_receipt
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.archive import Archive, ArchivePaths

OUTBOX_MIGRATIONS = [
    (
        "outbox-0001-initial",
        """
        CREATE TABLE outbox_documents (
            document_id TEXT PRIMARY KEY,
            facility_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            queued_at TEXT NOT NULL,
            pushed_at TEXT,
            delivered_at TEXT,
            confirmation TEXT
        );
        CREATE INDEX outbox_pending ON outbox_documents(delivered_at, facility_id);
        CREATE TABLE outbox_pushes (
            document_id TEXT NOT NULL REFERENCES outbox_documents(document_id),
            volume_id TEXT NOT NULL,
            recipients_sha256 TEXT NOT NULL,
            pushed_at TEXT NOT NULL,
            PRIMARY KEY (document_id, volume_id)
        )
        """,
    ),
]

OUTBOX = "outbox"
RETURNS = "returns"
DOCUMENT_SUFFIXES = (".json", ".json.sig", ".html")
CONFIRMATION_KIND = "delivery-confirmation"
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def outbox_folder(paths: ArchivePaths, facility_id: str) -> Path:
    """Where the archive keeps the queued documents of *facility_id*."""
    return paths.root / OUTBOX / facility_id


def document_files(folder: Path, document_id: str) -> list[Path]:
    return [folder / f"{document_id}{suffix}" for suffix in DOCUMENT_SUFFIXES]


def queue_document(
    conn: sqlite3.Connection,
    paths: ArchivePaths,
    *,
    document_id: str,
    facility_id: str,
    kind: str,
    now: datetime,
    files: list[Path],
) -> None:
    """Keep the three files of a signed document for delivery to *facility_id*.

    Runs inside the caller's transaction, or in its own. The files are copied atomically into
    the archive's outbox (unless already there); queuing the same document again changes
    nothing, so a re-run after a crash is harmless.
    """
    if not _DOCUMENT_ID.match(document_id) or not fmt.valid_facility_id(facility_id):
        raise ValueError(f"unsafe document or facility id: {document_id!r}, {facility_id!r}")
    expected = {f"{document_id}{suffix}" for suffix in DOCUMENT_SUFFIXES}
    if {f.name for f in files} != expected:
        raise ValueError(f"a document is the files {sorted(expected)}")
    folder = outbox_folder(paths, facility_id)
    folder.mkdir(parents=True, exist_ok=True)
    for src in files:
        target = folder / src.name
        if not (target.exists() and target.samefile(src)):
            atomic_write(target, src.read_bytes())
    sql = (
        "INSERT INTO outbox_documents (document_id, facility_id, kind, queued_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (document_id) DO NOTHING"
    )
    params = (document_id, facility_id, kind, now.isoformat(timespec="seconds"))
    if conn.in_transaction:
        conn.execute(sql, params)
    else:
        with transaction(conn):
            conn.execute(sql, params)


def mark_delivered(
    conn: sqlite3.Connection,
    document_id: str,
    *,
    delivered_at: str,
    confirmation: dict[str, Any] | None,
) -> bool:
    """Record a delivery (inside the caller's transaction); False if it was recorded already."""
    cursor = conn.execute(
        "UPDATE outbox_documents SET delivered_at = ?, confirmation = ? "
        "WHERE document_id = ? AND delivered_at IS NULL",
        (
            delivered_at,
            None if confirmation is None else json.dumps(confirmation, sort_keys=True),
            document_id,
        ),
    )
    return cursor.rowcount == 1


@dataclass(frozen=True)
class QueuedDocument:
    document_id: str
    facility_id: str
    kind: str
    queued_at: str
    pushed_at: str | None
    delivered_at: str | None


def pending(conn: sqlite3.Connection) -> list[QueuedDocument]:
    """Documents queued and not yet confirmed delivered, by facility then id."""
    rows = conn.execute(
        "SELECT document_id, facility_id, kind, queued_at, pushed_at, delivered_at "
        "FROM outbox_documents WHERE delivered_at IS NULL ORDER BY facility_id, document_id"
    )
    return [QueuedDocument(*row) for row in rows]


@dataclass
class PushResult:
    drive: Path
    documents: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # on this drive for these recipients
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # queued but its files are gone
    no_recipients: bool = False


def push_outbox(
    archive: Archive,
    drive_root: Path,
    recipients: list[str],
    now: datetime,
    *,
    operator: str | None = None,
) -> PushResult:
    """Write every queued, undelivered document onto the drive, encrypted to *recipients*.

    Each file is written atomically. A document this drive (by its volume id) already holds
    for the same recipients is left as it is; otherwise it is written again (a device was
    enrolled or revoked since, or its files went missing). With *operator*, a push that wrote
    something is recorded in the audit log (an export of documents naming studies, 110106).
    """
    result = PushResult(drive_root)
    documents = pending(archive.conn)
    if not documents:
        return result
    if not recipients:
        result.no_recipients = True
        return result
    root = drive_root / fmt.OUTBOX_DIR
    volume = _volume_id(drive_root)
    audience = hashlib.sha256("\n".join(sorted(recipients)).encode()).hexdigest()
    try:
        remove_temp_files(root)
        for doc in documents:
            sources = document_files(outbox_folder(archive.paths, doc.facility_id), doc.document_id)
            targets = [root / doc.facility_id / f"{src.name}.age" for src in sources]
            if not all(src.is_file() for src in sources):
                result.missing.append(doc.document_id)
                continue
            if _pushed(archive.conn, doc.document_id, volume, audience) and all(
                target.is_file() for target in targets
            ):
                result.already.append(doc.document_id)
                continue
            targets[0].parent.mkdir(parents=True, exist_ok=True)
            for src, target in zip(sources, targets, strict=True):
                atomic_write(target, encrypt_bytes(src.read_bytes(), recipients))
                result.files.append(target)
            result.documents.append(doc.document_id)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DriveFull(
                "the drive filled up while the center wrote receipts to its outbox",
                hint="Free space on the drive and run the import again: it writes them again.",
            ) from exc
        raise DriveError(
            f"cannot write the outbox on {drive_root}: {exc.strerror}",
            hint="Check that the drive is mounted writable and run the import again.",
        ) from exc
    if not result.documents:
        return result
    at = now.isoformat(timespec="seconds")
    with transaction(archive.conn):
        archive.conn.executemany(
            "UPDATE outbox_documents SET pushed_at = ? WHERE document_id = ?",
            [(at, d) for d in result.documents],
        )
        archive.conn.executemany(
            "INSERT INTO outbox_pushes (document_id, volume_id, recipients_sha256, pushed_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (document_id, volume_id) DO UPDATE SET "
            "recipients_sha256 = excluded.recipients_sha256, pushed_at = excluded.pushed_at",
            [(d, volume, audience, at) for d in result.documents],
        )
        if operator is not None:
            audit.record(
                archive.conn,
                at=now,
                operator=operator,
                action="outbox-push",
                event_code=audit.EVENT_EXPORT,
                target=f"drive:{volume}",
                details={"documents": result.documents, "recipients": len(recipients)},
            )
    return result


def _pushed(conn: sqlite3.Connection, document_id: str, volume: str, audience: str) -> bool:
    row = conn.execute(
        "SELECT recipients_sha256 FROM outbox_pushes WHERE document_id = ? AND volume_id = ?",
        (document_id, volume),
    ).fetchone()
    return row is not None and row[0] == audience


def _volume_id(drive_root: Path) -> str:
    try:
        parts = (drive_root / fmt.VOLUME_MARKER).read_text("ascii").split()
    except (OSError, UnicodeDecodeError):
        return "unmarked"
    return parts[1] if len(parts) == 2 else "unmarked"


# -- delivery confirmations (C2) --------------------------------------------------------------

RECORDED, ALREADY_RECORDED, REJECTED = "recorded", "already-recorded", "rejected"


@dataclass(frozen=True)
class ConfirmationOutcome:
    file: str  # relative to the drive
    document_id: str
    status: str
    reason: str = ""


class _Rejected(Exception):
    """A confirmation that must not be believed; the message says why (no patient data)."""


def read_confirmations(
    archive: Archive, drive_root: Path, *, operator: str, now: datetime
) -> list[ConfirmationOutcome]:
    """Check every delivery confirmation on the drive and record the deliveries they prove."""
    outcomes = []
    for path in sorted((drive_root / RETURNS).glob("*/delivery-*.json")):
        rel = path.relative_to(drive_root).as_posix()
        document_id = path.name.removeprefix("delivery-").removesuffix(".json")
        try:
            doc = _checked_confirmation(archive.conn, path)
        except _Rejected as exc:
            audit.alert(
                archive.conn,
                at=now,
                operator=operator,
                action="import",
                target=f"delivery:{document_id}",
                event_type=audit.EVENT_TYPE_NODE_AUTHENTICATION,
                reason=str(exc),
                details={"file": rel},
            )
            outcomes.append(ConfirmationOutcome(rel, document_id, REJECTED, str(exc)))
            continue
        with transaction(archive.conn):
            changed = mark_delivered(
                archive.conn,
                document_id,
                delivered_at=str(doc["delivered_at"]),
                confirmation=doc,
            )
            if changed:
                audit.record(
                    archive.conn,
                    at=now,
                    operator=operator,
                    action="delivery",
                    event_code=audit.EVENT_EXPORT,
                    target=f"document:{document_id}",
                    details={
                        "facility_id": doc["facility_id"],
                        "device_id": doc["device_id"],
                        "delivered_at": doc["delivered_at"],
                    },
                )
        outcomes.append(
            ConfirmationOutcome(rel, document_id, RECORDED if changed else ALREADY_RECORDED)
        )
    return outcomes


def _checked_confirmation(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    """The confirmation in *path* once every check passed; _Rejected otherwise."""
    try:
        body = path.read_bytes()
        signature = Path(f"{path}.sig").read_bytes()
    except FileNotFoundError as exc:
        raise _Rejected(f"{Path(str(exc.filename)).name} is missing") from exc
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise _Rejected("not valid JSON") from exc
    if not isinstance(doc, dict) or canonical_json(doc) != body:
        raise _Rejected("not a canonical JSON object")
    wanted = ("kind", "version", "document_id", "facility_id", "delivered_at", "device_id")
    if any(not isinstance(doc.get(key), str | int) for key in wanted):
        raise _Rejected("a required field is missing")
    if doc["kind"] != CONFIRMATION_KIND or doc["version"] != 1:
        raise _Rejected(f"not a {CONFIRMATION_KIND} of version 1")
    if path.name != f"delivery-{doc['document_id']}.json" or path.parent.name != doc["facility_id"]:
        raise _Rejected("its file name or folder does not match its document or facility")
    public = signing_key(conn, str(doc["device_id"]))
    if public is None:
        raise _Rejected(f"signed by {doc['device_id']}, which is not an active enrolled device")
    if doc.get("device_fingerprint") != fingerprint(public):
        raise _Rejected("the device fingerprint it states is not the enrolled device's")
    if not verify_receipt(body, signature, public):
        raise _Rejected("its signature does not verify with the enrolled device's key")
    queued = conn.execute(
        "SELECT facility_id FROM outbox_documents WHERE document_id = ?", (doc["document_id"],)
    ).fetchone()
    if queued is None or queued[0] != doc["facility_id"]:
        raise _Rejected("it confirms a document this center never queued for that facility")
    return doc
