"""Fixity: `center check` — is everything the catalog promises still there, and intact?

Every run compares the catalog with the object store (missing objects, orphans, files of the
wrong size, stray files), checks the catalog itself (SQLite's quick check, foreign keys,
bundle statuses against the quarantine, receipts and outbox files) and verifies the audit
chain against every checkpoint the center signed. With ``read_data`` it also re-hashes every
stored object; with ``subset=(n, t)`` it re-hashes the objects of *n* of *t* slices (an object's
slice is its sha256 modulo *t*), continuing after the slices of the previous such run, whose
position is kept in the catalog: ``--subset 1/T`` reads everything every T runs.

The run is recorded in ``fixity_runs`` and in the audit log; problems of the audit log are
also recorded there as a security alert (check ``archive-check``, :mod:`center.core.tamper`).
Missing, truncated or corrupt objects are findings, not alerts: bit rot looks the same.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from center.core import audit, tamper
from center.core.auditverify import AuditVerifyReport, verify_chain
from center.core.lock import maintenance_lock
from center.core.outbox import document_files, outbox_folder, pending
from center.core.storage_receipts import issued_checkpoints
from common.errors import ConfigError
from common.progress import NoProgress, Progress
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.archive import Archive

FIXITY_MIGRATIONS = [
    (
        "fixity-0001-initial",
        """
        CREATE TABLE fixity_state (
            slices INTEGER PRIMARY KEY,
            next_slice INTEGER NOT NULL
        );
        CREATE TABLE fixity_runs (
            run_id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            operator TEXT NOT NULL,
            mode TEXT NOT NULL,
            slices TEXT NOT NULL,
            objects_read INTEGER NOT NULL,
            bytes_read INTEGER NOT NULL,
            findings INTEGER NOT NULL
        )
        """,
    ),
]

MISSING, ORPHAN, CORRUPT, WRONG_SIZE, STRAY, CATALOG, RECEIPT, AUDIT = (
    "missing-object",
    "orphan-object",
    "corrupt-object",
    "wrong-size",
    "stray-file",
    "catalog-inconsistency",
    "receipt-files",
    "audit-chain",
)
_SHA = re.compile(r"^[0-9a-f]{64}$")
_SUBSET = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Finding:
    kind: str
    target: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "detail": self.detail}


@dataclass
class CheckReport:
    mode: str
    slices: list[int] = field(default_factory=list)
    total_slices: int = 0
    objects_cataloged: int = 0
    objects_stored: int = 0
    objects_read: int = 0
    bytes_read: int = 0
    quarantined: int = 0
    audit: AuditVerifyReport | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "slices": self.slices,
            "total_slices": self.total_slices,
            "objects_cataloged": self.objects_cataloged,
            "objects_stored": self.objects_stored,
            "objects_read": self.objects_read,
            "bytes_read": self.bytes_read,
            "quarantined": self.quarantined,
            "audit": None if self.audit is None else self.audit.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
        }


def parse_subset(text: str) -> tuple[int, int]:
    """``N/T`` as (N, T), with 1 <= N <= T."""
    match = _SUBSET.match(text)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise ConfigError(
            f"--subset {text!r} is not N/T with 1 <= N <= T",
            hint="For example --subset 1/30 re-reads a thirtieth of the objects per run.",
        )
    return int(match[1]), int(match[2])


def check_archive(
    archive: Archive,
    *,
    operator: str,
    now: datetime,
    read_data: bool = False,
    subset: tuple[int, int] | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    """Run every check (and re-hash what *read_data* or *subset* asks); record the run.

    Holds the maintenance lock: during an import, stored objects not yet cataloged would be
    reported as orphans.
    """
    with maintenance_lock(archive.paths.root, "check the archive"):
        return _check(archive, operator, now, read_data, subset, progress or NoProgress())


def _check(
    archive: Archive,
    operator: str,
    now: datetime,
    read_data: bool,
    subset: tuple[int, int] | None,
    progress: Progress,
) -> CheckReport:
    conn = archive.conn
    mode = "read-data" if read_data else ("subset" if subset else "catalog")
    report = CheckReport(mode)
    sizes = _cataloged_sizes(conn, report)
    stored = _stored_objects(archive, report)
    report.objects_cataloged, report.objects_stored = len(sizes), len(stored)
    for sha in sorted(sizes.keys() - stored):
        report.findings.append(Finding(MISSING, sha, "cataloged but not in the store"))
    for sha in sorted(stored - sizes.keys()):
        report.findings.append(Finding(ORPHAN, sha, "in the store but no instance refers to it"))
    present = sorted(sizes.keys() & stored)
    for sha in present:
        actual = archive.store.path(sha).stat().st_size
        if actual != sizes[sha]:
            report.findings.append(
                Finding(WRONG_SIZE, sha, f"{actual} bytes on disk, {sizes[sha]} cataloged")
            )
    to_read = present if read_data else []
    if subset is not None and not read_data:
        report.slices, report.total_slices = _next_slices(conn, *subset)
        to_read = [sha for sha in present if int(sha[:8], 16) % subset[1] in report.slices]
    _rehash(archive, to_read, report, progress)
    _check_catalog(archive, report)
    report.audit = verify_chain(
        conn, archive.card.signing_public, extra_checkpoints=issued_checkpoints(conn)
    )
    for problem in report.audit.problems:
        report.findings.append(
            Finding(AUDIT, f"entry {problem.seq}", f"{problem.kind}: {problem.detail}")
        )
    _record(archive, report, operator, now, subset)
    return report


def _cataloged_sizes(conn: sqlite3.Connection, report: CheckReport) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for sha, low, high in conn.execute(
        "SELECT sha256, MIN(size), MAX(size) FROM instances GROUP BY sha256"
    ):
        if low != high:
            report.findings.append(
                Finding(CATALOG, sha, f"instances of the same object state sizes {low} and {high}")
            )
        sizes[str(sha)] = int(high)
    return sizes


def _stored_objects(archive: Archive, report: CheckReport) -> set[str]:
    """Objects at their place in the store; anything else under objects/ is a stray file."""
    found: set[str] = set()
    root = archive.store.root
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        name = path.name
        if _SHA.match(name) and path == archive.store.path(name):
            found.add(name)
        else:
            where = path.relative_to(root).as_posix()
            report.findings.append(Finding(STRAY, where, "not an object at its place in the store"))
    return found


def _next_slices(conn: sqlite3.Connection, count: int, total: int) -> tuple[list[int], int]:
    row = conn.execute("SELECT next_slice FROM fixity_state WHERE slices = ?", (total,)).fetchone()
    start = 0 if row is None else int(row[0])
    return [(start + i) % total for i in range(count)], total


def _rehash(archive: Archive, shas: list[str], report: CheckReport, progress: Progress) -> None:
    progress.phase("re-hash", len(shas))
    for sha in shas:
        digest = hashlib.sha256()
        size = 0
        with archive.store.open(sha) as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        report.objects_read += 1
        report.bytes_read += size
        if digest.hexdigest() != sha:
            report.findings.append(Finding(CORRUPT, sha, "its content no longer has its sha256"))
        progress.advance(1, nbytes=size)


def _check_catalog(archive: Archive, report: CheckReport) -> None:
    conn = archive.conn
    quick = [str(r[0]) for r in conn.execute("PRAGMA quick_check")]
    if quick != ["ok"]:
        report.findings.append(Finding(CATALOG, "catalog.sqlite", "; ".join(quick[:5])))
    for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check").fetchall()[:20]:
        report.findings.append(
            Finding(CATALOG, f"{table} row {rowid}", f"refers to a missing {parent} row")
        )
    for bundle_id, status, held in conn.execute(
        "SELECT b.bundle_id, b.status, COUNT(q.item) FROM bundles b "
        "LEFT JOIN quarantine q USING (bundle_id) GROUP BY b.bundle_id"
    ):
        report.quarantined += int(held)
        if (status == "partial") != (held > 0):
            report.findings.append(
                Finding(
                    CATALOG,
                    f"bundle {bundle_id}",
                    f"status {status} with {held} quarantined object(s)",
                )
            )
    for receipt_id, facility_id, written in conn.execute(
        "SELECT receipt_id, facility_id, files_written FROM storage_receipts ORDER BY receipt_id"
    ):
        folder = archive.paths.receipts / facility_id
        if not written:
            report.findings.append(
                Finding(RECEIPT, receipt_id, "recorded but its files were never written")
            )
        elif not all(p.is_file() for p in document_files(folder, receipt_id)):
            report.findings.append(Finding(RECEIPT, receipt_id, f"files missing in {folder}"))
    for doc in pending(conn):
        folder = outbox_folder(archive.paths, doc.facility_id)
        if not all(p.is_file() for p in document_files(folder, doc.document_id)):
            report.findings.append(
                Finding(RECEIPT, doc.document_id, "queued for delivery but its files are missing")
            )


def _record(
    archive: Archive,
    report: CheckReport,
    operator: str,
    now: datetime,
    subset: tuple[int, int] | None,
) -> None:
    conn = archive.conn
    with transaction(conn):
        if report.slices and subset is not None:
            conn.execute(
                "INSERT INTO fixity_state (slices, next_slice) VALUES (?, ?) "
                "ON CONFLICT (slices) DO UPDATE SET next_slice = excluded.next_slice",
                (subset[1], (report.slices[-1] + 1) % subset[1]),
            )
        conn.execute(
            "INSERT INTO fixity_runs (at, operator, mode, slices, objects_read, bytes_read, "
            "findings) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                now.isoformat(timespec="seconds"),
                operator,
                report.mode,
                ",".join(map(str, report.slices))
                + (f"/{report.total_slices}" if report.slices else ""),
                report.objects_read,
                report.bytes_read,
                len(report.findings),
            ),
        )
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="check",
            event_code=audit.EVENT_INSTANCES_ACCESSED,
            target="archive",
            outcome=audit.OUTCOME_SUCCESS if report.ok else audit.OUTCOME_FINDINGS,
            details={
                "mode": report.mode,
                "objects_read": report.objects_read,
                "findings": len(report.findings),
                "kinds": sorted({f.kind for f in report.findings}),
            },
        )
        if report.audit is not None:
            tamper.audit_alert(
                conn,
                report.audit.problems,
                at=now,
                operator=operator,
                action="check",
                check=tamper.ARCHIVE_CHECK,
            )
