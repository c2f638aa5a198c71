"""The original built-in default rule, written out by hand: the oracle for the default preset.

10 years from the study date (the reception date when the study date is missing, invalid or
after the reception date); a patient under 18 at that date is kept until the 25th birthday;
the later date wins.
"""

from __future__ import annotations

from datetime import date

from common.retention import add_years, age_on, parse_da


def default_expiry(study_date: str, birth_date: str, reception: date) -> tuple[date, bool]:
    """(expiry, study date flagged) under the original default rule."""
    study = parse_da(study_date)
    flagged = study is None or study > reception
    base = reception if flagged or study is None else study
    expires = add_years(base, 10)
    birth = parse_da(birth_date)
    if birth is not None and age_on(birth, base) < 18:
        expires = max(expires, add_years(birth, 25))
    return expires, flagged
