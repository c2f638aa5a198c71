"""The pull journal: SQLite on the laptop's internal disk, the truth about what was carried.

DESIGN.md s6: WAL, synchronous=FULL, explicit BEGIN IMMEDIATE. An object row is written only
after its file is durable on the drive. Nothing identifying a patient is stored in clear: files
and instances are looked up by keyed hashes (HMAC with a key derived from the device key), and
each object's index entry is sealed with that key until it is written, encrypted, into the
bundle's index.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from common.crypto import keyed_hash, open_local, seal_local
from common.sqlitedb import connect, migrate, transaction
from courier.core.device import UnlockedDevice

MIGRATIONS = [
    (
        "journal-0001-initial",
        """
    CREATE TABLE bundles (
        bundle_id TEXT PRIMARY KEY,
        facility_id TEXT NOT NULL,
        volume_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'sealed')),
        created TEXT NOT NULL,
        sealed_at TEXT,
        object_count INTEGER NOT NULL DEFAULT 0,
        study_count INTEGER NOT NULL DEFAULT 0,
        payload_bytes INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE objects (
        bundle_id TEXT NOT NULL REFERENCES bundles(bundle_id),
        seq INTEGER NOT NULL,
        file_key TEXT NOT NULL,
        sop_key TEXT NOT NULL,
        study_key TEXT NOT NULL,
        plain_sha256 TEXT NOT NULL,
        plain_size INTEGER NOT NULL,
        cipher_sha256 TEXT NOT NULL,
        cipher_size INTEGER NOT NULL,
        entry BLOB NOT NULL,
        PRIMARY KEY (bundle_id, seq)
    );
    CREATE INDEX objects_sop ON objects(sop_key);
    CREATE TABLE files (
        facility_id TEXT NOT NULL,
        file_key TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        PRIMARY KEY (facility_id, file_key)
    );
    CREATE TABLE visits (
        visit_id INTEGER PRIMARY KEY,
        facility_id TEXT NOT NULL,
        bundle_id TEXT,
        operator TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        summary TEXT NOT NULL
    )
    """,
    ),
]


@dataclass(frozen=True)
class ObjectRow:
    seq: int
    plain_sha256: str
    cipher_sha256: str
    cipher_size: int
    entry: dict[str, Any]


class Journal:
    """Open with :meth:`open`; all writes are single short transactions."""

    def __init__(self, conn: sqlite3.Connection, key: bytes) -> None:
        self.conn = conn
        self._key = key

    @classmethod
    def open(cls, unlocked: UnlockedDevice) -> Journal:
        conn = connect(unlocked.device.home.journal)
        migrate(conn, MIGRATIONS, name="courier journal")
        return cls(conn, unlocked.journal_key())

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keyed lookups --------------------------------------------------------------------

    def file_key(self, facility_id: str, relpath: str) -> str:
        return keyed_hash(self._key, f"file\0{facility_id}\0{relpath}".encode())

    def uid_key(self, kind: str, uid: str) -> str:
        return keyed_hash(self._key, f"{kind}\0{uid}".encode())

    # -- bundles --------------------------------------------------------------------------

    def open_bundle(self, facility_id: str, volume_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT bundle_id FROM bundles WHERE facility_id = ? AND volume_id = ? "
            "AND status = 'open' ORDER BY created LIMIT 1",
            (facility_id, volume_id),
        ).fetchone()
        return None if row is None else str(row["bundle_id"])

    def create_bundle(self, bundle_id: str, facility_id: str, volume_id: str, created: str) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO bundles (bundle_id, facility_id, volume_id, status, created) "
                "VALUES (?, ?, ?, 'open', ?)",
                (bundle_id, facility_id, volume_id, created),
            )

    def mark_sealed(
        self, bundle_id: str, sealed_at: str, objects: int, studies: int, size: int
    ) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE bundles SET status = 'sealed', sealed_at = ?, object_count = ?, "
                "study_count = ?, payload_bytes = ? WHERE bundle_id = ?",
                (sealed_at, objects, studies, size, bundle_id),
            )

    # -- objects --------------------------------------------------------------------------

    def add_object(
        self,
        bundle_id: str,
        *,
        seq: int,
        file_key: str,
        sop_key: str,
        study_key: str,
        plain_sha256: str,
        plain_size: int,
        cipher_sha256: str,
        cipher_size: int,
        entry: dict[str, Any],
    ) -> None:
        aad = f"{bundle_id}\0{seq}".encode()
        sealed = seal_local(self._key, json.dumps(entry, sort_keys=True).encode(), aad)
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bundle_id,
                    seq,
                    file_key,
                    sop_key,
                    study_key,
                    plain_sha256,
                    plain_size,
                    cipher_sha256,
                    cipher_size,
                    sealed,
                ),
            )

    def objects(self, bundle_id: str) -> Iterator[ObjectRow]:
        rows = self.conn.execute(
            "SELECT seq, plain_sha256, cipher_sha256, cipher_size, entry FROM objects "
            "WHERE bundle_id = ? ORDER BY seq",
            (bundle_id,),
        )
        for row in rows:
            aad = f"{bundle_id}\0{row['seq']}".encode()
            entry = json.loads(open_local(self._key, row["entry"], aad))
            yield ObjectRow(
                row["seq"], row["plain_sha256"], row["cipher_sha256"], row["cipher_size"], entry
            )

    def next_seq(self, bundle_id: str) -> int:
        row = self.conn.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM objects WHERE bundle_id = ?", (bundle_id,)
        ).fetchone()
        return int(row[0])

    def carried_sha256(self, sop_key: str) -> set[str]:
        """Plaintext hashes of this instance already carried in any bundle of this device."""
        rows = self.conn.execute("SELECT plain_sha256 FROM objects WHERE sop_key = ?", (sop_key,))
        return {str(r[0]) for r in rows}

    # -- files (fast path) ----------------------------------------------------------------

    def file_state(self, facility_id: str, file_key: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT size, mtime_ns, state, reason FROM files "
            "WHERE facility_id = ? AND file_key = ?",
            (facility_id, file_key),
        ).fetchone()
        return row

    def set_file_state(
        self,
        facility_id: str,
        file_key: str,
        size: int,
        mtime_ns: int,
        state: str,
        reason: str | None = None,
    ) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                (facility_id, file_key, size, mtime_ns, state, reason),
            )

    # -- visits ---------------------------------------------------------------------------

    def record_visit(
        self,
        facility_id: str,
        bundle_id: str | None,
        operator: str,
        started: str,
        finished: str,
        summary: dict[str, Any],
    ) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO visits (facility_id, bundle_id, operator, started, finished, summary)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (facility_id, bundle_id, operator, started, finished, json.dumps(summary)),
            )
