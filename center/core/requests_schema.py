"""The catalog table of output requests (center/core/requests.py), apart so that opening the
catalog does not import the export machinery."""

from __future__ import annotations

REQUEST_MIGRATIONS = [
    (
        "requests-0001-initial",
        """
        CREATE TABLE output_requests (
            request_id TEXT PRIMARY KEY,
            facility_id TEXT NOT NULL,
            patient_id TEXT NOT NULL,
            criteria TEXT NOT NULL,
            purpose TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            recorded_by TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('open', 'fulfilled', 'cancelled')),
            closed_by TEXT,
            closed_at TEXT,
            export_id TEXT,
            destination TEXT,
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX output_requests_status ON output_requests(status, recorded_at)
        """,
    ),
]
