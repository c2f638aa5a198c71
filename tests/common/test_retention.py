"""Calendar arithmetic and the built-in default rule set (the `default` preset)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from common.retention import Expiry, StudyFacts, add_months, add_years, evaluate, parse_da
from common.retention_rules import load_preset


def _default(study_date: str, birth_date: str, reception: date) -> Expiry:
    facts = StudyFacts("c", "1", study_date=study_date, birth_date=birth_date, received=reception)
    return evaluate(load_preset("default"), facts)


def test_leap_day_plus_one_year_is_28_february() -> None:
    """29 February plus one year is 28 February of the common year."""
    assert add_years(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert add_years(date(2024, 2, 29), 4) == date(2028, 2, 29)


def test_month_end_clamps() -> None:
    """31 January plus one month is the last day of February."""
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)


def test_invalid_study_date_falls_back_to_reception_and_is_flagged() -> None:
    """A missing or invalid study date anchors on the reception date and flags the study."""
    for bad in ("", "2023", "20231345", "abcdefgh"):
        result = _default(bad, "19700101", date(2026, 5, 1))
        assert result.study_date_flagged and result.anchor == "reception-date"
        assert result.expires == date(2036, 5, 1)


def test_minor_is_kept_until_25th_birthday() -> None:
    """A child's study is kept at least until the 25th birthday when that is later."""
    result = _default("20200101", "20150610", date(2020, 2, 1))
    assert result.expires == date(2040, 6, 10)
    assert "minor-until-25" in result.rule


@given(
    study=st.dates(min_value=date(1950, 1, 1), max_value=date(2026, 1, 1)),
    age_days=st.integers(min_value=0, max_value=100 * 366),
    delay=st.integers(min_value=0, max_value=4000),
)
def test_expiry_never_earlier_than_ten_years(study: date, age_days: int, delay: int) -> None:
    """Expiry is never earlier than the study date plus the 10-year period."""
    birth = study - timedelta(days=age_days)
    reception = study + timedelta(days=delay)
    result = _default(study.strftime("%Y%m%d"), birth.strftime("%Y%m%d"), reception)
    assert result.expires >= add_years(study, 10)
    assert result.expires > study + timedelta(days=365 * 10 - 1)
    assert parse_da(study.strftime("%Y%m%d")) == study
