"""Expiry handling: which studies may be deleted, and deleting them (DESIGN.md s8, issue 5).

A study may be deleted only when **all** of these hold (:func:`decide`, a pure function):

- it is on no legal hold (of the study or of its patient);
- its expiry date has passed: the study is kept until its expiry date inclusive, so the first
  day it may go is the day after (dates are compared in the time zone of ``now``);
- its facility has a contract: ``delete`` waits *grace days* more after expiry; ``notify``
  waits until an expiry notice listing the study (for this expiry or a later one) was delivered
  to the clinic at least *grace days* ago (the longer of the notice's and the contract's grace),
  and not before the deletion date the notice states.

The expiry used is the later of the stored one and one freshly computed from the current rules
and catalog, so a rule change or a later study that lengthens an obligation protects the study
even before ``center retention apply`` runs.

Deleting is :mod:`center.core.purge`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from center.core.facilities import DELETE, Contract, contracts
from center.core.holds import ActiveHolds
from center.core.retention import active_rules
from center.core.retention_facts import (
    CatalogStudy,
    catalog_studies,
    compute,
    refresh_recorded,
    with_context,
)
from common.errors import ConfigError
from common.retention import Expiry, add_months

if TYPE_CHECKING:
    from center.core.store import ObjectStore

HELD = "held"
KEPT = "kept"
NO_CONTRACT = "no-contract"
NOTICE_NEEDED = "notice-needed"
NOTICE_UNDELIVERED = "notice-undelivered"
WAITING = "waiting"
DUE = "due"


_WITHIN = re.compile(r"^\s*(\d{1,4})\s*([dwmy])\s*$", re.IGNORECASE)


def horizon(text: str, today: date, *, option: str = "--due-within") -> date:
    """The last day of a window such as ``90d``, ``12w``, ``6m`` or ``1y`` starting *today*."""
    found = _WITHIN.match(text)
    if not found:
        raise ConfigError(
            f"{option} {text!r} is not a duration",
            hint="Write a number and a unit: 90d (days), 12w (weeks), 6m (months), 1y (years).",
        )
    count, unit = int(found.group(1)), found.group(2).lower()
    if unit in "dw":
        return today + timedelta(days=count * (7 if unit == "w" else 1))
    return add_months(today, count * (12 if unit == "y" else 1))


@dataclass(frozen=True)
class NoticeState:
    """An expiry notice as it concerns one study."""

    notice_id: str
    expiry: date  # the study's expiry the notice announced
    delete_on_or_after: date
    grace_days: int
    delivered_on: date | None


@dataclass(frozen=True)
class Decision:
    status: str
    expired: bool
    due_on: date | None  # the first day deletion is allowed, when it is known
    reason: str
    notice_id: str | None = None


def decide(
    expiry: date,
    *,
    today: date,
    held: bool,
    contract: Contract | None,
    notices: Sequence[NoticeState] = (),
) -> Decision:
    """Whether a study kept until *expiry* may be deleted on *today*, and why (pure)."""
    first = expiry + timedelta(days=1)
    expired = today >= first
    if held:
        return Decision(HELD, expired, None, "on legal hold: never deleted while held")
    if contract is None:
        return Decision(NO_CONTRACT, expired, None, "the facility has no contract on expiry")
    if contract.on_expiry == DELETE:
        due = first + timedelta(days=contract.grace_days)
        status = DUE if today >= due else WAITING if expired else KEPT
        return Decision(status, expired, due, f"delete contract, {contract.grace_days} grace days")
    current = [n for n in notices if n.expiry >= expiry]
    options = [
        (
            max(
                first,
                n.delete_on_or_after,
                n.delivered_on + timedelta(days=max(n.grace_days, contract.grace_days)),
            ),
            n,
        )
        for n in current
        if n.delivered_on is not None
    ]
    if options:
        due, best = min(options, key=lambda o: (o[0], o[1].notice_id))
        status = DUE if today >= due else WAITING if expired else KEPT
        reason = f"notice {best.notice_id} delivered on {best.delivered_on}"
        return Decision(status, expired, due, reason, best.notice_id)
    if current:
        return Decision(
            NOTICE_UNDELIVERED,
            expired,
            None,
            f"notice {current[0].notice_id} is not delivered yet",
            current[0].notice_id,
        )
    return Decision(NOTICE_NEEDED, expired, None, "notify contract: no notice sent yet")


@dataclass(frozen=True)
class StudyState:
    """A study with its computed and effective expiry and what may happen to it."""

    study: CatalogStudy
    computed: Expiry
    effective: date
    holds: list[int]
    contract: Contract | None
    decision: Decision

    @property
    def stale(self) -> bool:
        """The stored expiry differs from what the current rules give (run apply)."""
        return self.computed.expires != self.study.expiry


def notices_of(
    conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[NoticeState]]:
    """The notices listing each (facility, study UID), with their delivery date."""
    found: dict[tuple[str, str], list[NoticeState]] = {}
    if not keys:
        return found
    rows = conn.execute(
        "SELECT ns.facility_id, ns.study_instance_uid, ns.notice_id, ns.expiry, "
        "ns.delete_on_or_after, n.grace_days, o.delivered_at "
        "FROM expiry_notice_studies ns JOIN expiry_notices n ON n.notice_id = ns.notice_id "
        "LEFT JOIN outbox_documents o ON o.document_id = ns.notice_id "
        "WHERE ns.study_instance_uid IN (SELECT value FROM json_each(?)) "
        "ORDER BY n.issued_at, ns.notice_id",
        (json.dumps(sorted({u for _, u in keys})),),
    )
    wanted = set(keys)
    for f, u, notice, exp, after, grace, delivered in rows:
        if (str(f), str(u)) not in wanted:
            continue
        found.setdefault((str(f), str(u)), []).append(
            NoticeState(
                str(notice),
                date.fromisoformat(str(exp)),
                date.fromisoformat(str(after)),
                int(grace),
                date.fromisoformat(str(delivered)[:10]) if delivered else None,
            )
        )
    return found


def study_states(
    conn: sqlite3.Connection,
    store: ObjectStore | None,
    *,
    now: datetime,
    facility_id: str | None = None,
    horizon: date | None = None,
    studies: Sequence[CatalogStudy] | None = None,
) -> list[StudyState]:
    """The state of every study (of *facility_id*) whose expiry is on or before *horizon*.

    The stored expiry is never later than the effective one, so the stored-expiry filter of
    the query finds every candidate. With a *store*, recorded periods are read where needed.
    """
    today = now.date()
    rules = active_rules(conn).ruleset
    targets = (
        list(studies)
        if studies is not None
        else catalog_studies(conn, facility_id=facility_id, expiring_by=horizon)
    )
    if store is not None:
        targets = refresh_recorded(conn, store, rules, targets)
    computed = compute(rules, targets, with_context(conn, targets))
    holds, terms = ActiveHolds(conn), contracts(conn)
    notices = notices_of(conn, [(s.facts.facility_id, s.facts.study_instance_uid) for s in targets])
    states = []
    for study in targets:
        facts = study.facts
        effective = max(study.expiry, computed[study.study_pk].expires)
        if horizon is not None and effective > horizon:
            continue
        held = holds.of(facts.facility_id, facts.study_instance_uid, facts.patient_id)
        contract = terms.get(facts.facility_id)
        decision = decide(
            effective,
            today=today,
            held=bool(held),
            contract=contract,
            notices=notices.get((facts.facility_id, facts.study_instance_uid), []),
        )
        states.append(
            StudyState(study, computed[study.study_pk], effective, held, contract, decision)
        )
    return sorted(states, key=lambda s: (s.effective, s.study.facts.facility_id, s.study.accession))
