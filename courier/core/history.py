"""`courier log`: the reception log of past visits, from the journal (no patient data).

Reading it needs no passphrase: the visits table holds only facility ids, bundle ids, the
operator's name, counts, sizes, the terminal's capacity figures and warnings. The hash chain
of the courier log (courier/core/courierlog.py) is checked against the device's public key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from common.sqlitedb import connect, migrate
from courier.core import courierlog
from courier.core.device import Device
from courier.core.journal_schema import MIGRATIONS
from courier.core.release import ReleaseRecord, release_records


@dataclass(frozen=True)
class VisitRecord:
    facility_id: str
    bundle_id: str | None
    operator: str
    started: str
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "facility_id": self.facility_id,
            "bundle_id": self.bundle_id,
            "operator": self.operator,
            "date": self.started,
            **{
                k: v
                for k, v in self.summary.items()
                if k not in ("facility_id", "bundle_id", "operator", "started")
            },
        }


@dataclass
class VisitLog:
    visits: list[VisitRecord]
    chain_entries: int
    chain_problems: list[str]
    releases: list[ReleaseRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "visits": [v.to_dict() for v in self.visits],
            "releases": [r.to_dict() for r in self.releases],
            "log_chain": {"entries": self.chain_entries, "problems": self.chain_problems},
        }


def visit_log(device: Device, facility_id: str | None = None) -> VisitLog:
    """Past visits, oldest first (of one facility, or all), the operator's releases of lost
    bundles, and the log chain's state."""
    path = device.home.journal
    if not path.exists():
        return VisitLog([], 0, [])
    conn = connect(path)
    try:
        migrate(conn, MIGRATIONS, name="courier journal")
        query, args = "SELECT * FROM visits", ()
        if facility_id is not None:
            query, args = query + " WHERE facility_id = ?", (facility_id,)  # type: ignore[assignment]
        rows = conn.execute(query + " ORDER BY started, visit_id", args).fetchall()
        visits = [
            VisitRecord(
                r["facility_id"],
                r["bundle_id"],
                r["operator"],
                r["started"],
                json.loads(r["summary"]),
            )
            for r in rows
        ]
        entries = courierlog.entries(conn)
        problems = courierlog.verify_local(conn, device.signing_public)
        releases = release_records(conn, facility_id=facility_id)
    finally:
        conn.close()
    return VisitLog(visits, len(entries), problems, releases)
