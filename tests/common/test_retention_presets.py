"""Worked examples for each shipped preset (also tabled in docs/explanation/retention.md)."""

from __future__ import annotations

from datetime import date

import pytest

from common.retention import StudyFacts, evaluate
from common.retention_rules import load_preset

RECEIVED = date(2024, 6, 1)


def _study(
    study_date: str,
    modality: str,
    *,
    birth: str = "19600101",
    description: str = "",
    uid: str = "1.1",
) -> StudyFacts:
    return StudyFacts(
        facility_id="clinic-1",
        study_instance_uid=uid,
        study_date=study_date,
        birth_date=birth,
        received=RECEIVED,
        modalities=frozenset(modality.split("/")),
        description=description,
    )


def _later(study_date: str, modality: str) -> StudyFacts:
    return _study(study_date, modality, uid=f"9.{study_date}.{modality}")


# (case, study, the patient's other studies at the facility, expected expiry, winning rule id)
DEFAULT = [
    ("adult: 10 years", _study("20200502", "CR"), [], "2030-05-02", "ten-years"),
    ("leap day to 28 February", _study("20160229", "CT"), [], "2026-02-28", "ten-years"),
    (
        "minor aged 6",
        _study("20200502", "CR", birth="20130520"),
        [],
        "2038-05-20",
        "minor-until-25",
    ),
    (
        "minor born on a leap day",
        _study("20200502", "CR", birth="20080229"),
        [],
        "2033-02-28",
        "minor-until-25",
    ),
    (
        "aged 17: 10 years is later",
        _study("20200502", "CR", birth="20020601"),
        [],
        "2030-05-02",
        "ten-years",
    ),
    ("no study date: reception date", _study("", "CR"), [], "2034-06-01", "ten-years"),
]

JAPAN = [
    ("X-ray: 2 years", _study("20230701", "CR"), [], "2025-07-01", "x-ray-images"),
    ("CT on a leap day", _study("20240229", "CT"), [], "2026-02-28", "x-ray-images"),
    (
        "report: 5 years from the last visit",
        _study("20230701", "SR"),
        [_later("20240301", "CR")],
        "2029-03-01",
        "medical-record-documents",
    ),
    (
        "X-ray with its report: 5 years wins",
        _study("20230701", "CR/SR"),
        [],
        "2028-07-01",
        "medical-record-documents",
    ),
    ("MR: no rule, fallback 5 years", _study("20230701", "MR"), [], "2028-07-01", "fallback"),
    (
        "minor: no age rule in this preset",
        _study("20230701", "DX", birth="20150101"),
        [],
        "2025-07-01",
        "x-ray-images",
    ),
]

ENGLAND = [
    (
        "adult: 8 years after the visit",
        _study("20200310", "CR"),
        [],
        "2028-03-10",
        "adult-radiology",
    ),
    (
        "adult: a later visit counts",
        _study("20200310", "CR"),
        [_later("20230105", "US")],
        "2031-01-05",
        "adult-radiology",
    ),
    (
        "child aged 6: 25th birthday",
        _study("20200502", "CR", birth="20140101"),
        [],
        "2039-01-01",
        "child-until-25",
    ),
    (
        "aged 17 at the last visit: 26th birthday",
        _study("20200601", "CR", birth="20030228"),
        [],
        "2029-02-28",
        "child-17-until-26",
    ),
    (
        "aged 16, born on a leap day: 25th birthday on 28 February",
        _study("20200601", "CR", birth="20040229"),
        [],
        "2029-02-28",
        "child-until-25",
    ),
    (
        "screening mammogram: 10 years",
        _study("20200310", "MG", description="SCREENING MAMMO BILAT"),
        [],
        "2030-03-10",
        "screening-mammography",
    ),
    (
        "diagnostic mammogram: 8 years",
        _study("20200310", "MG", description="Diagnostic"),
        [],
        "2028-03-10",
        "adult-radiology",
    ),
]

US = [
    (
        "mammogram, none later: 10 years",
        _study("20200310", "MG"),
        [],
        "2030-03-10",
        "mammography-no-later",
    ),
    (
        "mammogram, a later one: 5 years",
        _study("20200310", "MG"),
        [_later("20220401", "MG")],
        "2025-03-10",
        "mammography",
    ),
    (
        "a later CT is not a mammogram",
        _study("20200310", "MG"),
        [_later("20220401", "CT")],
        "2030-03-10",
        "mammography-no-later",
    ),
    (
        "leap day, a later one: 28 February",
        _study("20240229", "MG"),
        [_later("20250101", "MG")],
        "2029-02-28",
        "mammography",
    ),
    (
        "an earlier mammogram does not count",
        _study("20220401", "MG"),
        [_later("20200310", "MG")],
        "2032-04-01",
        "mammography-no-later",
    ),
    ("CT: fallback placeholder", _study("20200310", "CT"), [], "2030-03-10", "fallback"),
    (
        "minor: no age rule in this preset",
        _study("20200310", "MG", birth="20100101"),
        [],
        "2030-03-10",
        "mammography-no-later",
    ),
]

CASES = [
    pytest.param(preset, study, others, expected, winner, id=f"{preset}: {case}")
    for preset, table in (
        ("default", DEFAULT),
        ("japan", JAPAN),
        ("england", ENGLAND),
        ("us-mammography", US),
    )
    for case, study, others, expected, winner in table
]


@pytest.mark.parametrize(("preset", "study", "others", "expected", "winner"), CASES)
def test_worked_example(
    preset: str, study: StudyFacts, others: list[StudyFacts], expected: str, winner: str
) -> None:
    """The preset gives the documented expiry through the documented rule."""
    result = evaluate(load_preset(preset), study, others)
    assert result.expires.isoformat() == expected
    assert result.rule.startswith(f"{preset}/{winner}:")
