"""The center catalog: SQLite with migrations (DESIGN.md s7).

Facility, patient, study, series and instance with the accompanying information, plus devices
and bundles with their reception information. Instances are unique by (SOP Instance UID,
sha256): the same UID with different bytes keeps both rows, and the later one is flagged.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from center.core.audit import AUDIT_MIGRATIONS
from center.core.check import FIXITY_MIGRATIONS
from center.core.courierlog import COURIER_LOG_MIGRATIONS
from center.core.devices import DEVICE_MIGRATIONS
from center.core.importer import INTAKE_MIGRATIONS
from center.core.missing import MISSING_MIGRATIONS
from center.core.operators import OPERATOR_MIGRATIONS
from center.core.outbox import OUTBOX_MIGRATIONS
from center.core.quarantine import QUARANTINE_MIGRATIONS
from center.core.requests_schema import REQUEST_MIGRATIONS
from center.core.retention_schema import RETENTION_MIGRATIONS
from center.core.search import SEARCH_MIGRATIONS, register_functions
from center.core.storage_receipts import RECEIPT_MIGRATIONS
from common.sqlitedb import connect, migrate

CATALOG_MIGRATIONS = [
    (
        "catalog-0001-initial",
        """
    CREATE TABLE facilities (
        facility_id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL
    );
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        operator TEXT NOT NULL,
        signing_public BLOB NOT NULL,
        recipient TEXT NOT NULL,
        card BLOB NOT NULL,
        enrolled_at TEXT NOT NULL,
        enrolled_by TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
        revoked_at TEXT
    );
    CREATE TABLE bundles (
        bundle_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(device_id),
        facility_id TEXT NOT NULL REFERENCES facilities(facility_id),
        created TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        imported_by TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('imported', 'partial')),
        object_count INTEGER NOT NULL,
        stored_count INTEGER NOT NULL,
        reception_operator TEXT NOT NULL,
        reception_date TEXT NOT NULL,
        reception TEXT NOT NULL
    );
    CREATE TABLE patients (
        patient_pk INTEGER PRIMARY KEY,
        facility_id TEXT NOT NULL REFERENCES facilities(facility_id),
        patient_id TEXT NOT NULL,
        patient_name TEXT NOT NULL,
        birth_date TEXT NOT NULL,
        sex TEXT NOT NULL,
        UNIQUE (facility_id, patient_id)
    );
    CREATE TABLE studies (
        study_pk INTEGER PRIMARY KEY,
        facility_id TEXT NOT NULL REFERENCES facilities(facility_id),
        patient_pk INTEGER NOT NULL REFERENCES patients(patient_pk),
        study_instance_uid TEXT NOT NULL,
        accession TEXT NOT NULL,
        study_id TEXT NOT NULL,
        study_date TEXT NOT NULL,
        study_time TEXT NOT NULL,
        description TEXT NOT NULL,
        modalities TEXT NOT NULL,
        body_part TEXT NOT NULL,
        first_received TEXT NOT NULL,
        expiry TEXT NOT NULL,
        expiry_rule TEXT NOT NULL,
        expiry_anchor TEXT NOT NULL,
        study_date_flagged INTEGER NOT NULL DEFAULT 0,
        UNIQUE (facility_id, study_instance_uid)
    );
    CREATE INDEX studies_patient ON studies(patient_pk);
    CREATE INDEX studies_accession ON studies(accession);
    CREATE INDEX studies_date ON studies(study_date);
    CREATE INDEX studies_expiry ON studies(expiry);
    CREATE TABLE series (
        series_pk INTEGER PRIMARY KEY,
        study_pk INTEGER NOT NULL REFERENCES studies(study_pk),
        series_instance_uid TEXT NOT NULL,
        modality TEXT NOT NULL,
        description TEXT NOT NULL,
        UNIQUE (study_pk, series_instance_uid)
    );
    CREATE TABLE instances (
        instance_pk INTEGER PRIMARY KEY,
        series_pk INTEGER NOT NULL REFERENCES series(series_pk),
        sop_instance_uid TEXT NOT NULL,
        sop_class_uid TEXT NOT NULL,
        transfer_syntax_uid TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        bundle_id TEXT NOT NULL REFERENCES bundles(bundle_id),
        bundle_seq INTEGER NOT NULL,
        source_relpath TEXT NOT NULL,
        received TEXT NOT NULL,
        conflict INTEGER NOT NULL DEFAULT 0,
        UNIQUE (sop_instance_uid, sha256)
    );
    CREATE INDEX instances_series ON instances(series_pk);
    CREATE INDEX instances_sha ON instances(sha256)
    """,
    ),
]


# Feature modules own their migrations; this is the one place that orders them.
MIGRATIONS = [
    *CATALOG_MIGRATIONS,
    *AUDIT_MIGRATIONS,
    *OPERATOR_MIGRATIONS,
    *SEARCH_MIGRATIONS,
    *REQUEST_MIGRATIONS,
    # center import (issue 4)
    *DEVICE_MIGRATIONS,
    *INTAKE_MIGRATIONS,
    *QUARANTINE_MIGRATIONS,
    *RECEIPT_MIGRATIONS,
    *OUTBOX_MIGRATIONS,
    *COURIER_LOG_MIGRATIONS,
    *FIXITY_MIGRATIONS,
    *RETENTION_MIGRATIONS,  # retention and expiry (issue 5)
    *MISSING_MIGRATIONS,  # bundles the courier logs name that never arrived
]


def open_catalog(path: Path) -> sqlite3.Connection:
    """Open (and migrate) the catalog database."""
    conn = connect(path)
    register_functions(conn)  # the search name-key triggers call it
    migrate(conn, MIGRATIONS, name="center catalog")
    return conn
