"""Quarantine: the objects of a bundle that failed verification, kept apart with a report.

Layout::

    <archive>/quarantine/<bundle-id>/report.json            what failed and why
    <archive>/quarantine/<bundle-id>/data/sNNNN/NNNNNN.age  each such object's ciphertext,
                                                            byte for byte as found on the drive

The report names the bundle, each object by its path in the bundle and the reason; it holds no
patient data (the ciphertext stays encrypted to the center). The same facts go into the catalog
table ``quarantine`` in the import's transaction, and the storage receipt lists them under
``not_stored``. Writing is idempotent: a re-run after a crash writes the same files again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from common.bundle import format as fmt
from common.fsio import atomic_output, atomic_write, remove_temp_files

if TYPE_CHECKING:
    from center.core.archive import ArchivePaths

QUARANTINE_MIGRATIONS = [
    (
        "quarantine-0001-initial",
        """
        CREATE TABLE quarantine (
            bundle_id TEXT NOT NULL,
            item TEXT NOT NULL,
            seq INTEGER,
            reason TEXT NOT NULL,
            kept TEXT,
            quarantined_at TEXT NOT NULL,
            PRIMARY KEY (bundle_id, item)
        )
        """,
    ),
]

REPORT = "report.json"


@dataclass(frozen=True)
class Rejected:
    """An object of a bundle that is not stored: its path in the bundle, number and reason."""

    item: str
    seq: int | None
    reason: str


def folder(paths: ArchivePaths, bundle_id: str) -> Path:
    root: Path = paths.quarantine
    return root / bundle_id


def keep(
    paths: ArchivePaths,
    bundle_dir: Path,
    info: fmt.BagInfo,
    rejected: list[Rejected],
    now: datetime,
) -> dict[str, str | None]:
    """Copy each rejected object's ciphertext (when there is one) and write the report.

    Returns, per item, the kept copy's path relative to the archive (None when the object is
    missing from the drive). Raises OSError if the archive cannot hold them.
    """
    target = folder(paths, info.bundle_id)
    target.mkdir(parents=True, exist_ok=True)
    remove_temp_files(target)
    kept: dict[str, str | None] = {}
    for item in rejected:
        source = bundle_dir / item.item
        kept[item.item] = None
        if not source.is_file() or source.is_symlink():
            continue
        copy = target / item.item
        copy.parent.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as src, atomic_output(copy, mode=0o444) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        kept[item.item] = copy.relative_to(paths.root).as_posix()
    report = {
        "kind": "quarantine-report",
        "bundle_id": info.bundle_id,
        "facility_id": info.facility_id,
        "device_id": info.device_id,
        "bundle_created": info.created,
        "written": now.isoformat(timespec="seconds"),
        "items": [
            {"item": r.item, "seq": r.seq, "reason": r.reason, "kept": kept[r.item]}
            for r in rejected
        ],
    }
    atomic_write(target / REPORT, (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
    return kept


def record(
    conn: sqlite3.Connection,
    bundle_id: str,
    rejected: list[Rejected],
    kept: dict[str, str | None],
    now: datetime,
) -> None:
    """The catalog's copy of the report (inside the import's transaction)."""
    conn.executemany(
        "INSERT INTO quarantine (bundle_id, item, seq, reason, kept, quarantined_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (bundle_id, item) DO NOTHING",
        [
            (
                bundle_id,
                r.item,
                r.seq,
                r.reason,
                kept.get(r.item),
                now.isoformat(timespec="seconds"),
            )
            for r in rejected
        ],
    )
