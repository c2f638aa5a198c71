"""The pull journal: SQLite on the laptop's internal disk, the truth about what was carried.

DESIGN.md s6: WAL, synchronous=FULL, explicit BEGIN IMMEDIATE. An object row is written only
after its file is durable on the drive. Nothing identifying a patient is stored in clear: files
and instances are looked up by keyed hashes (HMAC with a key derived from the device key), and
each object's index entry is sealed with that key until it is written, encrypted, into the
bundle's index.

Tables: ``bundles`` and ``objects`` (what each bundle holds), ``files`` (the fast path: per
terminal file its size, mtime and what was decided, so an unchanged file is not parsed again;
for a file selected but not carried yet, its header sealed, so a scan and then a pull parse it
once),
``walk_snapshots`` (the last walk's answers per facility, sealed: courier/core/walksnapshot.py),
``confirmed`` (instances the center's storage receipts confirm), ``deliveries`` (documents
handed to clinics), ``facility_stats`` and ``visits`` (the reception log). The courier's
hash-chained visit log is in courier/core/courierlog.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from common.crypto import keyed_hash, open_local, seal_local
from common.sqlitedb import connect, migrate, transaction
from courier.core.device import UnlockedDevice
from courier.core.journal_schema import MIGRATIONS

CARRIED, NOT_SELECTED, SKIPPED = "carried", "not-selected", "skipped"
_PAGE = 500  # objects fetched per query when a bundle's objects are read in order
SELECTED = "selected"  # parsed and selected, not carried yet: its header is kept, sealed


@dataclass(frozen=True)
class ObjectRow:
    seq: int
    file_key: str
    plain_sha256: str
    cipher_sha256: str
    cipher_size: int
    entry: dict[str, Any]


class FileState(NamedTuple):
    """What the last visit decided about one terminal file (the fast path; a named tuple:
    a walk reads one per file)."""

    size: int
    mtime_ns: int
    state: str
    reason: str | None = None
    study_key: str | None = None
    sop_key: str | None = None
    rule_digest: str | None = None
    header: bytes | None = None  # a selected file's header and rule values, sealed


@dataclass(frozen=True)
class NewObject:
    """An object durable on the drive, to be recorded with the state of its source file."""

    seq: int
    file_key: str
    sop_key: str
    study_key: str
    plain_sha256: str
    plain_size: int
    cipher_sha256: str
    cipher_size: int
    entry: dict[str, Any]
    file_state: FileState | None


class Journal:
    """Open with :meth:`open`; all writes are short transactions."""

    def __init__(self, conn: sqlite3.Connection, key: bytes) -> None:
        self.conn = conn
        self._key = key
        self._prefixes: dict[str, hmac.HMAC] = {}

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
        """keyed_hash of ``file\\0<facility>\\0<relpath>``, from a copy of the HMAC state that
        has absorbed the prefix (a walk computes one per file)."""
        prefix = self._prefixes.get(facility_id)
        if prefix is None:
            prefix = hmac.new(self._key, f"file\0{facility_id}\0".encode(), hashlib.sha256)
            self._prefixes[facility_id] = prefix
        mac = prefix.copy()
        mac.update(relpath.encode())
        return mac.hexdigest()

    def uid_key(self, kind: str, uid: str) -> str:
        return keyed_hash(self._key, f"{kind}\0{uid}".encode())

    # -- bundles --------------------------------------------------------------------------

    def open_bundle(self, facility_id: str, volume_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT bundle_id FROM bundles WHERE facility_id = ? AND volume_id = ? "  # noqa: S608 - a constant
            f"AND status = 'open' AND {_NOT_GIVEN_UP} ORDER BY created LIMIT 1",
            (facility_id, volume_id),
        ).fetchone()
        return None if row is None else str(row["bundle_id"])

    def open_elsewhere(self, facility_id: str, volume_id: str) -> list[tuple[str, str]]:
        """Unfinished bundles of *facility_id* on other drives: (bundle id, volume id)."""
        rows = self.conn.execute(
            "SELECT bundle_id, volume_id FROM bundles WHERE facility_id = ? AND volume_id != ? "  # noqa: S608
            f"AND status = 'open' AND {_NOT_GIVEN_UP} ORDER BY created",
            (facility_id, volume_id),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def create_bundle(self, bundle_id: str, facility_id: str, volume_id: str, created: str) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO bundles (bundle_id, facility_id, volume_id, status, created) "
                "VALUES (?, ?, ?, 'open', ?)",
                (bundle_id, facility_id, volume_id, created),
            )

    def prepare_seal(self, bundle_id: str, visit: dict[str, Any]) -> None:
        """Keep the visit's details (sealed: they name terminal files) before sealing starts,
        so a bundle found sealed on the drive after a crash can still get its receipt."""
        blob = seal_local(
            self._key, json.dumps(visit, sort_keys=True).encode(), _visit_aad(bundle_id)
        )
        with transaction(self.conn):
            self.conn.execute("UPDATE bundles SET visit = ? WHERE bundle_id = ?", (blob, bundle_id))

    def prepared_visit(self, bundle_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT visit FROM bundles WHERE bundle_id = ?", (bundle_id,))
        blob = row.fetchone()
        if blob is None or blob[0] is None:
            return None
        doc: dict[str, Any] = json.loads(open_local(self._key, blob[0], _visit_aad(bundle_id)))
        return doc

    def mark_sealed(
        self,
        bundle_id: str,
        *,
        sealed_at: str,
        objects: int,
        studies: int,
        size: int,
        checkpoint: dict[str, Any],
    ) -> None:
        """The signature is on the drive: record it with the courier log checkpoint carried."""
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE bundles SET status = 'sealed', sealed_at = ?, object_count = ?, "
                "study_count = ?, payload_bytes = ?, log_seq = ?, log_hash = ?, "
                "log_signature = ? WHERE bundle_id = ?",
                (
                    sealed_at,
                    objects,
                    studies,
                    size,
                    checkpoint["seq"],
                    checkpoint["hash"],
                    checkpoint["signature"],
                    bundle_id,
                ),
            )

    def finish_bundle(self, bundle_id: str, visit: dict[str, Any]) -> None:
        """The receipt is written: record the visit and mark the bundle finished, together."""
        with transaction(self.conn):
            self._insert_visit(visit)
            self.conn.execute("UPDATE bundles SET finished = 1 WHERE bundle_id = ?", (bundle_id,))

    def bundle(self, bundle_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM bundles WHERE bundle_id = ?", (bundle_id,)
        ).fetchone()
        return row

    def unfinished(self, facility_id: str) -> list[str]:
        """Sealed bundles whose receipt and visit record are not written yet."""
        rows = self.conn.execute(
            "SELECT bundle_id FROM bundles WHERE facility_id = ? AND status = 'sealed' "
            "AND finished = 0 ORDER BY sealed_at",
            (facility_id,),
        )
        return [str(r[0]) for r in rows]

    # -- objects --------------------------------------------------------------------------

    def add_object(self, bundle_id: str, obj: NewObject) -> None:
        """Record a durable object and its source file's state in one transaction."""
        self.add_objects(bundle_id, [obj])

    def add_objects(self, bundle_id: str, objs: list[NewObject]) -> None:
        """Record durable objects and their source files' states in one transaction (each
        commit is an fsync of the journal: a batch pays it once)."""
        facility_id = self.facility_of(bundle_id)
        rows = []
        for obj in objs:
            aad = f"{bundle_id}\0{obj.seq}".encode()
            sealed = seal_local(self._key, json.dumps(obj.entry, sort_keys=True).encode(), aad)
            rows.append(
                (
                    bundle_id,
                    obj.seq,
                    obj.file_key,
                    obj.sop_key,
                    obj.study_key,
                    obj.plain_sha256,
                    obj.plain_size,
                    obj.cipher_sha256,
                    obj.cipher_size,
                    sealed,
                )
            )
        with transaction(self.conn):
            self.conn.executemany("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            for obj in objs:
                if obj.file_state is not None:
                    self._put_file(facility_id, obj.file_key, obj.file_state)

    def facility_of(self, bundle_id: str) -> str:
        row = self.conn.execute(
            "SELECT facility_id FROM bundles WHERE bundle_id = ?", (bundle_id,)
        ).fetchone()
        return str(row[0])

    def drop_object(self, bundle_id: str, seq: int) -> None:
        """Forget an object that is missing or wrong on the drive, so it is copied again."""
        facility_id = self.facility_of(bundle_id)
        with transaction(self.conn):
            row = self.conn.execute(
                "SELECT file_key FROM objects WHERE bundle_id = ? AND seq = ?", (bundle_id, seq)
            ).fetchone()
            if row is not None:
                self.conn.execute(
                    "DELETE FROM files WHERE facility_id = ? AND file_key = ?",
                    (facility_id, row[0]),
                )
            self.conn.execute(
                "DELETE FROM objects WHERE bundle_id = ? AND seq = ?", (bundle_id, seq)
            )

    def objects(self, bundle_id: str) -> Iterator[ObjectRow]:
        """The bundle's objects in order, their entries unsealed, fetched a page at a time
        (a bundle of 100,000 objects is never all in memory)."""
        after = 0
        while True:
            rows = self.conn.execute(
                "SELECT seq, file_key, plain_sha256, cipher_sha256, cipher_size, entry "
                "FROM objects WHERE bundle_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (bundle_id, after, _PAGE),
            ).fetchall()
            for row in rows:
                aad = f"{bundle_id}\0{row['seq']}".encode()
                entry = json.loads(open_local(self._key, row["entry"], aad))
                yield ObjectRow(
                    row["seq"],
                    row["file_key"],
                    row["plain_sha256"],
                    row["cipher_sha256"],
                    row["cipher_size"],
                    entry,
                )
            if len(rows) < _PAGE:
                return
            after = int(rows[-1]["seq"])

    def object_checks(self, bundle_id: str) -> list[tuple[int, str, int]]:
        """(seq, ciphertext sha256, size) of each object, in order: what the drive must hold."""
        rows = self.conn.execute(
            "SELECT seq, cipher_sha256, cipher_size FROM objects WHERE bundle_id = ? ORDER BY seq",
            (bundle_id,),
        )
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    def bundle_totals(self, bundle_id: str) -> tuple[int, int, int, int]:
        """(objects, studies, plaintext bytes, ciphertext bytes) of a bundle's objects."""
        row = self.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT study_key), COALESCE(SUM(plain_size), 0), "
            "COALESCE(SUM(cipher_size), 0) FROM objects WHERE bundle_id = ?",
            (bundle_id,),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def object_sizes(self, bundle_id: str) -> dict[int, int]:
        """Ciphertext size of each recorded object of a bundle, by sequence number."""
        rows = self.conn.execute(
            "SELECT seq, cipher_size FROM objects WHERE bundle_id = ?", (bundle_id,)
        )
        return {int(r[0]): int(r[1]) for r in rows}

    def next_seq(self, bundle_id: str) -> int:
        row = self.conn.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM objects WHERE bundle_id = ?", (bundle_id,)
        ).fetchone()
        return int(row[0])

    def carried_sha256(self, sop_key: str) -> set[str]:
        """Plaintext hashes of this instance carried in any bundle of this device or confirmed
        stored by the center."""
        rows = self.conn.execute(
            f"SELECT plain_sha256 FROM objects o WHERE sop_key = ? AND {_NOT_RELEASED} "  # noqa: S608 - a constant
            "UNION SELECT plain_sha256 FROM confirmed WHERE sop_key = ?",
            (sop_key, sop_key),
        )
        return {str(r[0]) for r in rows}

    def is_confirmed(self, sop_key: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM confirmed WHERE sop_key = ?", (sop_key,))
        return row.fetchone() is not None

    # -- files (fast path) ----------------------------------------------------------------

    def file_state(self, facility_id: str, file_key: str) -> FileState | None:
        row = self.conn.execute(
            "SELECT size, mtime_ns, state, reason, study_key, sop_key, rule_digest, header "
            "FROM files WHERE facility_id = ? AND file_key = ?",
            (facility_id, file_key),
        ).fetchone()
        return None if row is None else FileState(*row)

    def file_states(self, facility_id: str, file_keys: list[str]) -> dict[str, FileState]:
        """:meth:`file_state` of many files in one query (a walk asks per few hundred)."""
        marks = ", ".join("?" * len(file_keys))  # placeholders only: values are bound
        columns = "file_key, size, mtime_ns, state, reason, study_key, sop_key, rule_digest, header"
        query = f"SELECT {columns} FROM files WHERE facility_id = ? AND file_key IN ({marks})"  # noqa: S608
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples: a walk reads one row per file
        rows = cursor.execute(query, (facility_id, *file_keys))
        return {row[0]: FileState._make(row[1:]) for row in rows}

    def seal_header(self, facility_id: str, file_key: str, doc: Any) -> bytes:
        """A selected file's header (patient data: kept only sealed with the journal key)."""
        return seal_local(self._key, json.dumps(doc).encode(), _header_aad(facility_id, file_key))

    def open_header(self, facility_id: str, file_key: str, blob: bytes) -> Any:
        text = open_local(self._key, blob, _header_aad(facility_id, file_key)).decode()
        return json.loads(text)  # from str: json's encoding detection costs more than decode()

    def carried_among(self, sop_keys: list[str]) -> set[str]:
        """Those of *sop_keys* carried in any bundle or confirmed stored (one query for a few
        hundred files of a walk)."""
        marks = ", ".join("?" * len(sop_keys))
        query = (
            f"SELECT sop_key FROM objects o WHERE sop_key IN ({marks}) AND {_NOT_RELEASED} "  # noqa: S608 - placeholders
            f"UNION SELECT sop_key FROM confirmed WHERE sop_key IN ({marks})"
        )
        return {str(r[0]) for r in self.conn.execute(query, (*sop_keys, *sop_keys))}

    def confirmed_among(self, sop_keys: list[str]) -> set[str]:
        """Those of *sop_keys* the center confirmed stored (one query for many files)."""
        marks = ", ".join("?" * len(sop_keys))
        query = f"SELECT sop_key FROM confirmed WHERE sop_key IN ({marks})"  # noqa: S608
        return {str(r[0]) for r in self.conn.execute(query, sop_keys)}

    def put_file_states(self, facility_id: str, rows: Iterable[tuple[str, FileState]]) -> None:
        """Record many decisions in one transaction (a cache: losing them costs only parsing)."""
        with transaction(self.conn):
            for file_key, state in rows:
                self._put_file(facility_id, file_key, state)

    def _put_file(self, facility_id: str, file_key: str, s: FileState) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO files (facility_id, file_key, size, mtime_ns, state, reason, "
            "study_key, sop_key, rule_digest, header) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                facility_id,
                file_key,
                s.size,
                s.mtime_ns,
                s.state,
                s.reason,
                s.study_key,
                s.sop_key,
                s.rule_digest,
                s.header,
            ),
        )

    def walk_snapshot(self, facility_id: str) -> bytes | None:
        """The facility's walk snapshot, opened (courier/core/walksnapshot.py), or None when
        there is none: a write to a table a walk reads deletes them all (journal-0006).
        KeyFileError when it does not open."""
        row = self.conn.execute(
            "SELECT snapshot FROM walk_snapshots WHERE facility_id = ?", (facility_id,)
        ).fetchone()
        if row is None:
            return None
        return open_local(self._key, row[0], _walk_aad(facility_id))

    def put_walk_snapshot(self, facility_id: str, payload: bytes) -> None:
        """Keep a walk's answers (names of terminal files: sealed with the journal key)."""
        blob = seal_local(self._key, payload, _walk_aad(facility_id))
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO walk_snapshots (facility_id, snapshot) VALUES (?, ?)",
                (facility_id, blob),
            )

    # -- center confirmations and deliveries ----------------------------------------------

    def confirm(self, pairs: Iterable[tuple[str, str]], document_id: str, at: str) -> int:
        """Mark (sop_key, sha256) pairs as confirmed stored; return how many were new."""
        with transaction(self.conn):
            before = self.conn.total_changes
            self.conn.executemany(
                "INSERT OR IGNORE INTO confirmed VALUES (?, ?, ?, ?)",
                [(sop, digest, document_id, at) for sop, digest in pairs],
            )
            return self.conn.total_changes - before

    def release_unconfirmed(self, bundle_id: str, document_id: str, at: str) -> int:
        """Stop counting as carried the objects of *bundle_id* that no storage receipt confirms
        (the center quarantined them), and forget their files' recorded decisions, so the next
        pull takes them again. Call after :meth:`confirm` with the bundle's receipt."""
        with transaction(self.conn):
            return self.release_in_transaction(bundle_id, document_id, at)[0]

    def release_in_transaction(self, bundle_id: str, document_id: str, at: str) -> tuple[int, int]:
        """:meth:`release_unconfirmed` inside the caller's transaction: (objects, studies)
        released (courier/core/release.py records an operator's release with it, atomically)."""
        rows = self.conn.execute(
            "SELECT o.seq, o.file_key, b.facility_id, o.study_key FROM objects o "  # noqa: S608 - a constant
            "JOIN bundles b ON b.bundle_id = o.bundle_id "
            f"WHERE o.bundle_id = ? AND {_NOT_RELEASED} AND NOT EXISTS ("
            "SELECT 1 FROM confirmed c WHERE c.sop_key = o.sop_key "
            "AND c.plain_sha256 = o.plain_sha256)",
            (bundle_id,),
        ).fetchall()
        for seq, file_key, facility_id, _study in rows:
            self.conn.execute(
                "INSERT INTO released VALUES (?, ?, ?, ?)", (bundle_id, seq, document_id, at)
            )
            self.conn.execute(
                "DELETE FROM files WHERE facility_id = ? AND file_key = ?",
                (facility_id, file_key),
            )
        return len(rows), len({r[3] for r in rows})

    def record_delivery(
        self, document_id: str, facility_id: str, kind: str, at: str, volume_id: str
    ) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?, ?)",
                (document_id, facility_id, kind, at, volume_id),
            )

    # -- facility statistics and visits ---------------------------------------------------

    def largest_study(self, facility_id: str) -> int:
        row = self.conn.execute(
            "SELECT largest_study_bytes FROM facility_stats WHERE facility_id = ?",
            (facility_id,),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def note_largest_study(self, facility_id: str, size: int) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO facility_stats VALUES (?, ?) ON CONFLICT (facility_id) DO UPDATE "
                "SET largest_study_bytes = MAX(largest_study_bytes, excluded.largest_study_bytes)",
                (facility_id, size),
            )

    def record_visit(self, visit: dict[str, Any]) -> None:
        """Record a visit that sealed no bundle (see :meth:`finish_bundle` for one that did)."""
        with transaction(self.conn):
            self._insert_visit(visit)

    def _insert_visit(self, visit: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO visits (facility_id, bundle_id, operator, started, finished, summary)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                visit["facility_id"],
                visit.get("bundle_id"),
                visit["operator"],
                visit["started"],
                visit["finished"],
                json.dumps(visit, sort_keys=True),
            ),
        )

    def visits(self, facility_id: str | None = None) -> list[sqlite3.Row]:
        query = "SELECT * FROM visits"
        args: tuple[str, ...] = ()
        if facility_id is not None:
            query, args = query + " WHERE facility_id = ?", (facility_id,)
        return list(self.conn.execute(query + " ORDER BY started, visit_id", args))


# An object row (aliased ``o``) not released by :meth:`Journal.release_unconfirmed`.
_NOT_RELEASED = (
    "NOT EXISTS (SELECT 1 FROM released r WHERE r.bundle_id = o.bundle_id AND r.seq = o.seq)"
)

# A bundle row the operator has not released as lost (`courier bundle release`): an open one
# released is never resumed, its drive being gone.
_NOT_GIVEN_UP = "bundle_id NOT IN (SELECT bundle_id FROM bundle_releases)"


def _walk_aad(facility_id: str) -> bytes:
    return f"walk-snapshot\0{facility_id}".encode()


def _header_aad(facility_id: str, file_key: str) -> bytes:
    return f"header\0{facility_id}\0{file_key}".encode()


def _visit_aad(bundle_id: str) -> bytes:
    return f"visit\0{bundle_id}".encode()
