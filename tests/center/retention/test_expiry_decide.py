"""The purge decision (pure): never unexpired, never held, never before a notice's grace."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import event, given
from hypothesis import strategies as st

from center.core.expiry import (
    DUE,
    HELD,
    KEPT,
    NO_CONTRACT,
    NOTICE_NEEDED,
    NOTICE_UNDELIVERED,
    WAITING,
    NoticeState,
    decide,
)
from center.core.facilities import Contract

EXPIRY = date(2030, 3, 10)


def near(day: date, low: int, high: int) -> st.SearchStrategy[date]:
    return st.integers(low, high).map(lambda n: day + timedelta(days=n))


contract = st.builds(
    Contract,
    facility_id=st.just("c"),
    on_expiry=st.sampled_from(["delete", "notify"]),
    grace_days=st.integers(0, 120),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[date, date, Contract | None, list[NoticeState]]:
    """A study's expiry, a day to decide on, a contract and notices, all close enough in time
    for grace periods, deletion dates and deliveries to interact."""
    expiry = draw(near(EXPIRY, -30, 30))
    listed = [
        NoticeState(
            f"n{n}",
            notice_expiry := draw(near(expiry, -30, 30)),
            draw(near(notice_expiry, -10, 90)),
            draw(st.integers(0, 120)),
            draw(st.none() | near(expiry, -120, 200)),
        )
        for n in range(draw(st.integers(0, 3)))
    ]
    terms = draw(contract) if draw(st.integers(0, 4)) else None
    return expiry, draw(near(expiry, -10, 300)), terms, listed


@given(case=cases())
def test_due_only_when_every_condition_holds(
    case: tuple[date, date, Contract | None, list[NoticeState]],
) -> None:
    """DUE implies: expiry passed, a contract, and its grace (and any notice's terms) met."""
    expiry, today, terms, listed = case
    decision = decide(expiry, today=today, held=False, contract=terms, notices=listed)
    event(decision.status)
    if decision.status != DUE:
        return
    assert terms is not None and today > expiry and decision.expired
    if terms.on_expiry == "delete":
        assert today >= expiry + timedelta(days=1 + terms.grace_days)
    else:
        assert any(
            n.notice_id == decision.notice_id
            and n.delivered_on is not None
            and n.expiry >= expiry
            and today >= n.delivered_on + timedelta(days=max(n.grace_days, terms.grace_days))
            and today >= n.delete_on_or_after
            for n in listed
        )


@given(
    case=cases(),
    notice_grace=st.integers(0, 120),
    contract_grace=st.integers(0, 120),
    into=st.integers(0, 119),
    stated=st.integers(-10, 90),
)
def test_never_due_while_a_notice_grace_period_runs(
    case: tuple[date, date, Contract | None, list[NoticeState]],
    notice_grace: int,
    contract_grace: int,
    into: int,
    stated: int,
) -> None:
    """With one delivered notice, nothing is due before the longer grace period has run from
    the delivery, nor before the deletion date the notice states."""
    expiry, today, _, _ = case
    delivered = today - timedelta(days=into)
    notice = NoticeState("n", expiry, expiry + timedelta(days=stated), notice_grace, delivered)
    terms = Contract("c", "notify", contract_grace)
    decision = decide(expiry, today=today, held=False, contract=terms, notices=[notice])
    if into < max(notice_grace, contract_grace) or today < notice.delete_on_or_after:
        assert decision.status != DUE


@given(case=cases())
def test_held_is_never_due(case: tuple[date, date, Contract | None, list[NoticeState]]) -> None:
    """A held study is reported as held, whatever else is true."""
    expiry, today, terms, listed = case
    assert decide(expiry, today=today, held=True, contract=terms, notices=listed).status == HELD


@given(case=cases())
def test_due_date_is_where_deletion_starts(
    case: tuple[date, date, Contract | None, list[NoticeState]],
) -> None:
    """When a due date is known, the study is due on it and not the day before."""
    expiry, today, terms, listed = case
    decision = decide(expiry, today=today, held=False, contract=terms, notices=listed)
    if decision.due_on is None:
        return
    on = decide(expiry, today=decision.due_on, held=False, contract=terms, notices=listed)
    before = decision.due_on - timedelta(days=1)
    earlier = decide(expiry, today=before, held=False, contract=terms, notices=listed)
    assert on.status == DUE and earlier.status != DUE


def _delete(grace: int) -> Contract:
    return Contract("c", "delete", grace)


def _notify(grace: int) -> Contract:
    return Contract("c", "notify", grace)


def test_worked_decisions() -> None:
    """A table of decisions around the expiry date (kept through the expiry day itself)."""
    delivered = NoticeState("n1", EXPIRY, date(2030, 3, 11), 30, date(2030, 1, 5))
    late = NoticeState("n2", EXPIRY, date(2030, 3, 11), 30, date(2030, 3, 1))
    stale = NoticeState("n0", date(2029, 1, 1), date(2029, 1, 2), 0, date(2028, 6, 1))
    pending = NoticeState("n3", EXPIRY, date(2030, 3, 11), 30, None)
    table = [
        (date(2030, 3, 10), _delete(0), [], KEPT, date(2030, 3, 11)),
        (date(2030, 3, 11), _delete(0), [], DUE, date(2030, 3, 11)),
        (date(2030, 3, 11), _delete(10), [], WAITING, date(2030, 3, 21)),
        (date(2031, 1, 1), None, [], NO_CONTRACT, None),
        (date(2031, 1, 1), _notify(30), [], NOTICE_NEEDED, None),
        (date(2031, 1, 1), _notify(30), [stale], NOTICE_NEEDED, None),
        (date(2031, 1, 1), _notify(30), [pending], NOTICE_UNDELIVERED, None),
        (date(2030, 3, 11), _notify(30), [delivered], DUE, date(2030, 3, 11)),
        (date(2030, 3, 11), _notify(30), [late], WAITING, date(2030, 3, 31)),
        (date(2030, 3, 11), _notify(90), [delivered], WAITING, date(2030, 4, 5)),
    ]
    for today, contract, listed, status, due in table:
        decision = decide(EXPIRY, today=today, held=False, contract=contract, notices=listed)
        assert (decision.status, decision.due_on) == (status, due), (today, contract, listed)
