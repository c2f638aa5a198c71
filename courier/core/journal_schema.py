"""The journal's schema: named migrations, applied in this order (common/sqlitedb.py).

Feature modules own their migrations (the courier log's are in courier/core/courierlog.py);
this is the one place that orders them.
"""

from __future__ import annotations

from courier.core.courierlog import LOG_MIGRATIONS

# The tables a walk of a terminal folder reads (courier/core/plan.py): a change to any of them
# ends the walk snapshots (journal-0006). A table planning reads in the future belongs here,
# with a migration adding its triggers.
WALK_READS = ("files", "objects", "released", "confirmed")

JOURNAL_MIGRATIONS = [
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
    (
        "journal-0002-complete-visit",
        """
    ALTER TABLE files ADD COLUMN study_key TEXT;
    ALTER TABLE files ADD COLUMN sop_key TEXT;
    ALTER TABLE files ADD COLUMN rule_digest TEXT;
    ALTER TABLE bundles ADD COLUMN finished INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE bundles ADD COLUMN visit TEXT;
    UPDATE bundles SET finished = 1 WHERE status = 'sealed';
    CREATE TABLE confirmed (
        sop_key TEXT NOT NULL,
        plain_sha256 TEXT NOT NULL,
        document_id TEXT NOT NULL,
        confirmed_at TEXT NOT NULL,
        PRIMARY KEY (sop_key, plain_sha256)
    );
    CREATE TABLE deliveries (
        document_id TEXT PRIMARY KEY,
        facility_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        delivered_at TEXT NOT NULL,
        volume_id TEXT NOT NULL
    );
    CREATE TABLE facility_stats (
        facility_id TEXT PRIMARY KEY,
        largest_study_bytes INTEGER NOT NULL
    );
    CREATE INDEX files_sop ON files(sop_key)
    """,
    ),
    (
        "journal-0003-selected-headers",
        """
    ALTER TABLE files ADD COLUMN header BLOB
    """,
    ),
    (
        # Objects of a sealed bundle that the center's storage receipt did not confirm (they
        # failed its checks and were quarantined): no longer counted as carried, so the next
        # pull takes them again, as the receipt promises the clinic.
        "journal-0004-released",
        """
    CREATE TABLE released (
        bundle_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        document_id TEXT NOT NULL,
        released_at TEXT NOT NULL,
        PRIMARY KEY (bundle_id, seq)
    )
    """,
    ),
    (
        # An operator's release of a bundle whose drive was lost or that the center refused
        # whole (`courier bundle release`): its unconfirmed objects are in ``released`` with
        # the document id ``operator-release``; this row says who, when, why and how many.
        "journal-0005-bundle-releases",
        """
    CREATE TABLE bundle_releases (
        release_id INTEGER PRIMARY KEY,
        bundle_id TEXT NOT NULL REFERENCES bundles(bundle_id),
        released_at TEXT NOT NULL,
        operator TEXT NOT NULL,
        reason TEXT NOT NULL,
        instances INTEGER NOT NULL,
        studies INTEGER NOT NULL,
        log_seq INTEGER NOT NULL
    );
    CREATE INDEX bundle_releases_bundle ON bundle_releases(bundle_id)
    """,
    ),
    (
        # The last walk's answers per facility, sealed (courier/core/walksnapshot.py). A
        # snapshot is valid only while the tables a walk reads are unchanged: any write to
        # them deletes every snapshot, so a snapshot present says what the journal says.
        "journal-0006-walk-snapshots",
        ";\n".join(
            [
                "CREATE TABLE walk_snapshots (facility_id TEXT PRIMARY KEY, "
                "snapshot BLOB NOT NULL)",
                *(
                    f"CREATE TRIGGER {table}_{event.lower()}_ends_walk_snapshots AFTER {event} "  # noqa: S608 - constants
                    f"ON {table} BEGIN DELETE FROM walk_snapshots; END"
                    for table in WALK_READS
                    for event in ("INSERT", "UPDATE", "DELETE")
                ),
            ]
        ),
    ),
]
MIGRATIONS = [*JOURNAL_MIGRATIONS, *LOG_MIGRATIONS]
