"""Facility contracts: what the center does when a clinic's study expires (DESIGN.md s8).

``delete``: the study is deleted once its expiry date has passed and then *grace days* more.
``notify``: the clinic first receives an expiry notice (:mod:`center.core.notices`) and the
study is deleted only once the notice was delivered at least *grace days* ago. A facility
without a contract has nothing deleted: the center waits for one to be set.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from center.core import audit
from center.core.retention import EVENT_TYPE_SOFTWARE_CONFIGURATION
from center.core.retention_facts import transaction_of
from common.bundle.format import valid_facility_id
from common.errors import ConfigError

DELETE, NOTIFY = "delete", "notify"
ON_EXPIRY = (DELETE, NOTIFY)
MAX_GRACE_DAYS = 3660


@dataclass(frozen=True)
class Contract:
    facility_id: str
    on_expiry: str
    grace_days: int
    updated_at: str = ""
    updated_by: str = ""


@dataclass(frozen=True)
class FacilityRow:
    facility_id: str
    name: str
    studies: int
    contract: Contract | None


def contracts(conn: sqlite3.Connection) -> dict[str, Contract]:
    """Every facility's contract, by facility id."""
    rows = conn.execute(
        "SELECT facility_id, on_expiry, grace_days, updated_at, updated_by FROM facility_contracts"
    )
    return {
        str(r[0]): Contract(str(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows
    }


def set_contract(
    conn: sqlite3.Connection,
    facility_id: str,
    *,
    on_expiry: str,
    grace_days: int,
    operator: str,
    now: datetime,
) -> tuple[Contract | None, Contract]:
    """Record the facility's contract (creating the facility if new); (before, after). Audited."""
    if not valid_facility_id(facility_id):
        raise ConfigError(
            f"{facility_id!r} is not a facility id",
            hint="Use letters, digits, '.', '_' and '-', starting with a letter or digit.",
        )
    if on_expiry not in ON_EXPIRY:
        raise ConfigError(f"--on-expiry must be one of {', '.join(ON_EXPIRY)}")
    if not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise ConfigError(f"--grace-days must be a whole number from 0 to {MAX_GRACE_DAYS}")
    at = now.isoformat(timespec="seconds")
    with transaction_of(conn):
        before = contracts(conn).get(facility_id)
        conn.execute(
            "INSERT OR IGNORE INTO facilities (facility_id, created) VALUES (?, ?)",
            (facility_id, at),
        )
        conn.execute(
            "INSERT INTO facility_contracts VALUES (?, ?, ?, ?, ?) ON CONFLICT (facility_id) "
            "DO UPDATE SET on_expiry = excluded.on_expiry, grace_days = excluded.grace_days, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (facility_id, on_expiry, grace_days, at, operator),
        )
        after = Contract(facility_id, on_expiry, grace_days, at, operator)
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="facility-contract",
            event_code=audit.EVENT_SECURITY_ALERT,
            target=f"facility:{facility_id}",
            details={
                "event_type": EVENT_TYPE_SOFTWARE_CONFIGURATION,
                "before": None
                if before is None
                else {"on_expiry": before.on_expiry, "grace_days": before.grace_days},
                "after": {"on_expiry": on_expiry, "grace_days": grace_days},
            },
        )
    return before, after


def list_facilities(conn: sqlite3.Connection) -> list[FacilityRow]:
    """Every facility the archive knows (catalogued or with a contract), with its contract."""
    known = contracts(conn)
    rows = conn.execute(
        "SELECT f.facility_id, f.name, (SELECT COUNT(*) FROM studies st "
        "WHERE st.facility_id = f.facility_id) FROM facilities f ORDER BY f.facility_id"
    )
    return [FacilityRow(str(r[0]), str(r[1]), int(r[2]), known.get(str(r[0]))) for r in rows]
