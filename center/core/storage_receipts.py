"""Storage receipts: what the center stored of a bundle, signed for the clinic (contract C3).

The receipt document is built and recorded in the import's transaction (table
``storage_receipts``, with each study's promised expiry in ``receipt_promises``), together with
the catalog rows it describes and the audit checkpoint it carries. Its files are written after
the commit by :func:`finish_receipts`: into ``<archive>/receipts/<facility>/`` (the center's
copy) and queued in the drive outbox (:mod:`center.core.outbox`). Ed25519 signatures are
deterministic, so a re-run after a crash between the commit and the files writes exactly the
bytes the interrupted run would have written.

A receipt never claims more than was verified: it lists only instances that are in the store,
each with its sha256, and names what the bundle held that was not stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from center.core import audit
from center.core.outbox import outbox_folder, queue_document
from center.core.quarantine import Rejected
from common.bundle.reader import IndexEntry
from common.canonical import canonical_json
from common.fsio import TEMP_SUFFIX
from common.receipts import ReceiptFiles, ReceivedInstance, issuer, summarize_studies, write_receipt
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.archive import Archive, CenterKeys

RECEIPT_MIGRATIONS = [
    (
        "receipts-0001-storage",
        """
        CREATE TABLE storage_receipts (
            receipt_id TEXT PRIMARY KEY,
            facility_id TEXT NOT NULL,
            bundle_id TEXT NOT NULL UNIQUE,
            issued TEXT NOT NULL,
            document TEXT NOT NULL,
            files_written INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE receipt_promises (
            receipt_id TEXT NOT NULL,
            facility_id TEXT NOT NULL,
            study_instance_uid TEXT NOT NULL,
            expiry TEXT NOT NULL,
            issued TEXT NOT NULL,
            PRIMARY KEY (receipt_id, study_instance_uid)
        );
        CREATE INDEX receipt_promises_study ON receipt_promises(facility_id, study_instance_uid)
        """,
    ),
]

KIND = "storage-receipt"
TITLE = "Storage receipt"


def receipt_id_for(bundle_id: str) -> str:
    return f"storage-{bundle_id}"


def build_document(
    conn: sqlite3.Connection,
    *,
    center_name: str,
    center_public: bytes,
    facility_id: str,
    bundle_id: str,
    stored: Iterable[IndexEntry],
    not_stored: list[Rejected],
    checkpoint: audit.Checkpoint,
    now: datetime,
) -> dict[str, Any]:
    """The storage receipt of one bundle (call after its catalog rows are written)."""
    entries = list(stored)
    studies = summarize_studies(ReceivedInstance(e.header, e.sha256, e.size) for e in entries)
    by_study: dict[str, list[IndexEntry]] = {}
    for entry in entries:
        by_study.setdefault(entry.header.study_instance_uid, []).append(entry)
    for study in studies:
        row = conn.execute(
            "SELECT expiry FROM studies WHERE facility_id = ? AND study_instance_uid = ?",
            (facility_id, study["study_instance_uid"]),
        ).fetchone()
        study["expiry"] = str(row[0])
        pairs = sorted(
            {(e.header.sop_instance_uid, e.sha256) for e in by_study[study["study_instance_uid"]]}
        )
        study["instance_count"] = study["instances"]
        study["instances"] = [{"sop_instance_uid": uid, "sha256": sha} for uid, sha in pairs]
    document: dict[str, Any] = {
        "kind": KIND,
        "version": 1,
        "receipt_id": receipt_id_for(bundle_id),
        "issued": now.isoformat(timespec="seconds"),
        "facility_id": facility_id,
        "bundle_id": bundle_id,
        "issuer": issuer("center", center_name, center_public),
        "studies": studies,
        "totals": {
            "studies": len(studies),
            "instances": len(entries),
            "bytes": sum(e.size for e in entries),
            "not_stored": len(not_stored),
        },
        "not_stored": [{"item": r.item, "reason": r.reason} for r in not_stored],
        "audit_checkpoint": checkpoint.to_dict(),
    }
    if not_stored:
        document["warnings"] = [
            f"{len(not_stored)} object(s) of this delivery failed verification at the center and "
            "were NOT stored (see 'Not included'). They are still at the clinic: the courier "
            "brings them again on the next visit."
        ]
    return document


def record_receipt(conn: sqlite3.Connection, document: dict[str, Any]) -> None:
    """Keep the receipt and its expiry promises (inside the import's transaction)."""
    conn.execute(
        "INSERT INTO storage_receipts (receipt_id, facility_id, bundle_id, issued, document) "
        "VALUES (?, ?, ?, ?, ?)",
        (
            document["receipt_id"],
            document["facility_id"],
            document["bundle_id"],
            document["issued"],
            canonical_json(document).decode(),
        ),
    )
    conn.executemany(
        "INSERT INTO receipt_promises (receipt_id, facility_id, study_instance_uid, expiry, "
        "issued) VALUES (?, ?, ?, ?, ?)",
        [
            (
                document["receipt_id"],
                document["facility_id"],
                study["study_instance_uid"],
                study["expiry"],
                document["issued"],
            )
            for study in document["studies"]
        ],
    )


def finish_receipts(archive: Archive, keys: CenterKeys, now: datetime) -> list[ReceiptFiles]:
    """Write the files of every recorded receipt that has none yet, and queue them.

    Runs after each import's commit, and on every later import (so a crash between the commit
    and the files is repaired by running the import again, temporary files of the crash
    removed).
    """
    written = []
    rows = archive.conn.execute(
        "SELECT receipt_id, facility_id, document FROM storage_receipts "
        "WHERE files_written = 0 ORDER BY receipt_id"
    ).fetchall()
    for receipt_id, facility_id, text in rows:
        for folder in (
            archive.paths.receipts / facility_id,
            outbox_folder(archive.paths, facility_id),
        ):
            for stale in folder.glob(f".{receipt_id}.*{TEMP_SUFFIX}"):  # a crash mid-write
                stale.unlink()
        document = json.loads(text)
        files = write_receipt(
            archive.paths.receipts / facility_id, document, keys.signing_seed, title=TITLE
        )
        with transaction(archive.conn):
            queue_document(
                archive.conn,
                archive.paths,
                document_id=receipt_id,
                facility_id=facility_id,
                kind=KIND,
                now=now,
                files=[files.json, files.signature, files.html],
            )
            archive.conn.execute(
                "UPDATE storage_receipts SET files_written = 1 WHERE receipt_id = ?",
                (receipt_id,),
            )
        written.append(files)
    return written


def receipt_path(archive: Archive, receipt_id: str) -> Path | None:
    """The center's copy of *receipt_id* (its JSON file), or None if the center has none."""
    row = archive.conn.execute(
        "SELECT facility_id FROM storage_receipts WHERE receipt_id = ?", (receipt_id,)
    ).fetchone()
    receipts: Path = archive.paths.receipts
    if row is not None:
        return receipts / str(row[0]) / f"{receipt_id}.json"
    found = sorted(receipts.glob(f"*/{receipt_id}.json"))
    return found[0] if found else None


def recorded_document(conn: sqlite3.Connection, receipt_id: str) -> bytes | None:
    """The canonical JSON bytes the center recorded for *receipt_id*."""
    row = conn.execute(
        "SELECT document FROM storage_receipts WHERE receipt_id = ?", (receipt_id,)
    ).fetchone()
    return None if row is None else str(row[0]).encode()


def issued_checkpoints(conn: sqlite3.Connection) -> list[audit.Checkpoint]:
    """The audit checkpoints printed on every storage receipt the center issued."""
    found = []
    for (text,) in conn.execute("SELECT document FROM storage_receipts"):
        cp = json.loads(text).get("audit_checkpoint")
        if isinstance(cp, dict):
            found.append(audit.Checkpoint(int(cp["seq"]), cp["hash"], cp["at"], cp["signature"]))
    return found
