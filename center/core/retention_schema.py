"""Catalog tables of retention and expiry handling (issue 5), as named migrations.

One list for the feature, concatenated by :mod:`center.core.catalog`. Holds, notices and
tombstones name studies by (facility, Study Instance UID) and patients by (facility, patient
ID), not by row numbers: they must outlive the catalog rows of a deleted study.
"""

from __future__ import annotations

RETENTION_MIGRATIONS = [
    (
        "retention-0001-rules",
        """
        CREATE TABLE retention_rulesets (
            ruleset_pk INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            origin TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            source TEXT NOT NULL,
            installed_at TEXT NOT NULL,
            installed_by TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
        );
        CREATE UNIQUE INDEX retention_rulesets_one_active ON retention_rulesets(active)
            WHERE active = 1;
        CREATE TABLE retention_facts (
            facility_id TEXT NOT NULL,
            study_instance_uid TEXT NOT NULL,
            body_parts TEXT NOT NULL DEFAULT '[]',
            recorded_tag TEXT NOT NULL DEFAULT '',
            recorded_period TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (facility_id, study_instance_uid)
        );
        CREATE TABLE promise_waivers (
            waiver_pk INTEGER PRIMARY KEY,
            facility_id TEXT NOT NULL,
            study_instance_uid TEXT NOT NULL,
            waived_through TEXT NOT NULL,
            reason TEXT NOT NULL,
            at TEXT NOT NULL,
            operator TEXT NOT NULL
        );
        CREATE INDEX promise_waivers_study ON promise_waivers(facility_id, study_instance_uid)
        """,
    ),
    (
        "facilities-0001-contracts",
        """
        CREATE TABLE facility_contracts (
            facility_id TEXT PRIMARY KEY,
            on_expiry TEXT NOT NULL CHECK (on_expiry IN ('delete', 'notify')),
            grace_days INTEGER NOT NULL CHECK (grace_days >= 0),
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL
        )
        """,
    ),
    (
        "holds-0001-initial",
        """
        CREATE TABLE legal_holds (
            hold_id INTEGER PRIMARY KEY,
            scope TEXT NOT NULL CHECK (scope IN ('study', 'patient')),
            facility_id TEXT NOT NULL,
            study_instance_uid TEXT NOT NULL DEFAULT '',
            patient_id TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL,
            placed_at TEXT NOT NULL,
            placed_by TEXT NOT NULL,
            released_at TEXT,
            released_by TEXT,
            release_reason TEXT
        );
        CREATE INDEX legal_holds_facility ON legal_holds(facility_id, released_at)
        """,
    ),
    (
        "expiry-0001-notices",
        """
        CREATE TABLE expiry_notices (
            notice_id TEXT PRIMARY KEY,
            facility_id TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            issued_by TEXT NOT NULL,
            grace_days INTEGER NOT NULL
        );
        CREATE TABLE expiry_notice_studies (
            notice_id TEXT NOT NULL REFERENCES expiry_notices(notice_id),
            facility_id TEXT NOT NULL,
            study_instance_uid TEXT NOT NULL,
            expiry TEXT NOT NULL,
            delete_on_or_after TEXT NOT NULL,
            PRIMARY KEY (notice_id, study_instance_uid)
        );
        CREATE INDEX expiry_notice_studies_study
            ON expiry_notice_studies(facility_id, study_instance_uid)
        """,
    ),
    (
        "expiry-0002-tombstones",
        """
        CREATE TABLE tombstones (
            tombstone_id INTEGER PRIMARY KEY,
            facility_id TEXT NOT NULL,
            study_instance_uid TEXT NOT NULL,
            accession TEXT NOT NULL,
            study_date TEXT NOT NULL,
            modalities TEXT NOT NULL,
            instance_count INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            instance_list_sha256 TEXT NOT NULL,
            instances TEXT NOT NULL,
            expiry TEXT NOT NULL,
            expiry_rule TEXT NOT NULL,
            on_expiry TEXT NOT NULL,
            grace_days INTEGER NOT NULL,
            notice_id TEXT,
            deleted_at TEXT NOT NULL,
            deleted_by TEXT NOT NULL,
            audit_seq INTEGER NOT NULL,
            objects_removed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX tombstones_study ON tombstones(facility_id, study_instance_uid)
        """,
    ),
]
