"""Retention: how long the center must keep a study (DESIGN.md s8).

Pure functions, no I/O. This module holds the built-in default rule used until a facility's
rules file is configured: keep a study 10 years from its study date (from its reception date
when the study date is missing or invalid, and the study is then flagged), and for a patient who
was a minor at the study, at least until their 25th birthday. The longest obligation wins.

Calendar arithmetic: adding years to 29 February gives 28 February in a common year (never
1 March), so an expiry is never later than the calendar allows nor earlier than the period.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

DEFAULT_PERIOD_YEARS = 10
MINOR_UNTIL_AGE = 25
ADULT_AGE = 18


def add_years(day: date, years: int) -> date:
    """*day* plus *years* calendar years; 29 February maps to 28 February in a common year."""
    target = day.year + years
    if day.month == 2 and day.day == 29 and not calendar.isleap(target):
        return date(target, 2, 28)
    return day.replace(year=target)


def add_months(day: date, months: int) -> date:
    """*day* plus *months*; a day past the end of the target month becomes its last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def parse_da(value: str) -> date | None:
    """A DICOM DA value (YYYYMMDD, PS3.5 6.2) as a date, or None if missing or invalid."""
    text = value.strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class Expiry:
    """A computed expiry date and why."""

    expires: date
    anchor: str  # "study-date" or "reception-date"
    rule: str
    study_date_flagged: bool


def default_expiry(study_date: str, birth_date: str, reception: date) -> Expiry:
    """Expiry under the built-in default rule (see the module docstring)."""
    study = parse_da(study_date)
    flagged = study is None or study > reception
    base = reception if flagged or study is None else study
    anchor = "reception-date" if flagged else "study-date"
    expires = add_years(base, DEFAULT_PERIOD_YEARS)
    rule = f"default: {DEFAULT_PERIOD_YEARS} years from the {anchor.replace('-', ' ')}"
    birth = parse_da(birth_date)
    if birth is not None and age_on(birth, base) < ADULT_AGE:
        until = add_years(birth, MINOR_UNTIL_AGE)
        if until > expires:
            expires = until
            rule = f"default: minor at the study, kept until the {MINOR_UNTIL_AGE}th birthday"
    return Expiry(expires=expires, anchor=anchor, rule=rule, study_date_flagged=flagged)
