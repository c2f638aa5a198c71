"""Property tests of the rules engine over generated rules, studies and dates."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from common.retention import (
    FLAG_BEFORE_RECEPTION,
    FLAG_BIRTH_DATE,
    FLAG_FALLBACK,
    FLAG_STUDY_DATE,
    AgeRange,
    Match,
    Period,
    RecordedPeriod,
    Rule,
    RuleSet,
    StudyFacts,
    add_years,
    age_on,
    evaluate,
    parse_da,
    parse_period_text,
)
from common.retention_rules import load_preset
from tests.common.retention_oracle import default_expiry

MODALITIES = ["CR", "CT", "MG", "MR", "SR", "US"]
FACILITIES = ["clinic-1", "clinic-2"]

dates = st.dates(min_value=date(1930, 1, 1), max_value=date(2040, 12, 31))
periods = st.builds(
    Period,
    years=st.integers(0, 30),
    months=st.integers(0, 24),
    days=st.integers(0, 400),
).filter(lambda p: p != Period())


@st.composite
def rules(draw: st.DrawFn, index: int = 0) -> Rule:
    low = draw(st.none() | st.integers(0, 40))
    high = draw(st.none() | st.integers(0, 90))
    ages = (
        None
        if low is None and high is None
        else AgeRange(low, None if high is None else max(high, low or 0))
    )
    return Rule(
        id=f"r{index}-{draw(st.integers(0, 10**6))}",
        description="generated",
        period=draw(periods),
        anchor=draw(st.sampled_from(["study-date", "reception-date", "birth-date", "last-visit"])),
        match=Match(
            modality=frozenset(draw(st.lists(st.sampled_from(MODALITIES), max_size=2))),
            facility=frozenset(draw(st.lists(st.sampled_from(FACILITIES), max_size=1))),
            age_at_study=ages,
        ),
    )


@st.composite
def rulesets(draw: st.DrawFn) -> RuleSet:
    count = draw(st.integers(0, 5))
    fallback = Rule(
        "fallback",
        "fallback",
        draw(periods),
        draw(st.sampled_from(["study-date", "reception-date"])),
    )
    recorded = draw(st.none() | st.just(RecordedPeriod("StudyComments")))
    return RuleSet(
        "gen", "generated", "", (), tuple(draw(rules(i)) for i in range(count)), fallback, recorded
    )


def _da(day: date | None) -> str:
    return day.strftime("%Y%m%d") if day else ""


@st.composite
def studies(draw: st.DrawFn, uid: str = "1.2.3") -> StudyFacts:
    received = draw(dates)
    study = draw(
        st.none() | st.dates(min_value=date(1930, 1, 1), max_value=received + timedelta(days=30))
    )
    birth = draw(st.none() | st.dates(min_value=date(1900, 1, 1), max_value=received))
    return StudyFacts(
        facility_id=draw(st.sampled_from(FACILITIES)),
        study_instance_uid=uid,
        study_date=_da(study) if study else draw(st.sampled_from(["", "2023", "20231341"])),
        birth_date=_da(birth),
        received=received,
        modalities=frozenset(draw(st.lists(st.sampled_from(MODALITIES), min_size=1, max_size=2))),
        recorded_period=draw(st.sampled_from(["", "3Y", "15", "P1Y6M", "12 years", "bogus"])),
    )


def _applies(rule: Rule, facts: StudyFacts) -> bool:
    """Independent reading of the generated rules' conditions (unknown age counts as met)."""
    m = rule.match
    if m.modality and not (m.modality & facts.modalities):
        return False
    if m.facility and facts.facility_id not in m.facility:
        return False
    birth, base = parse_da(facts.birth_date), _base(facts)
    return m.age_at_study is None or birth is None or m.age_at_study.contains(age_on(birth, base))


def _base(facts: StudyFacts) -> date:
    assert facts.received is not None
    study = parse_da(facts.study_date)
    return study if study is not None and study <= facts.received else facts.received


def _anchor(rule: Rule, facts: StudyFacts, others: list[StudyFacts]) -> date | None:
    assert facts.received is not None
    return {
        "study-date": _base(facts),
        "reception-date": facts.received,
        "birth-date": parse_da(facts.birth_date),
        "last-visit": max(_base(s) for s in [facts, *others]),
    }[rule.anchor]


@settings(max_examples=300, deadline=None)
@given(ruleset=rulesets(), facts=studies(), others=st.lists(studies("9.9"), max_size=3))
def test_expiry_never_earlier_than_any_applicable_rule(
    ruleset: RuleSet, facts: StudyFacts, others: list[StudyFacts]
) -> None:
    """The expiry is never earlier than anchor plus period of any rule that applies."""
    others = [
        StudyFacts(**{**o.__dict__, "study_instance_uid": f"9.{n}"}) for n, o in enumerate(others)
    ]
    result = evaluate(ruleset, facts, others)
    gave_date = False
    for rule in ruleset.rules:
        anchor = _anchor(rule, facts, others)
        if _applies(rule, facts) and anchor is not None:
            assert result.expires >= rule.period.after(anchor), rule
            gave_date = True
    if not gave_date:
        assert result.expires >= ruleset.fallback.period.after(
            _anchor(ruleset.fallback, facts, others)
        )  # type: ignore[arg-type]
        assert FLAG_FALLBACK in result.flags
    recorded = parse_period_text(facts.recorded_period)
    if ruleset.recorded_period is not None and recorded is not None:
        assert result.expires >= recorded.after(_base(facts))
    assert (result.expires < facts.received) == (FLAG_BEFORE_RECEPTION in result.flags)  # type: ignore[operator]
    assert result.study_date_flagged == (FLAG_STUDY_DATE in result.flags)


@settings(max_examples=200, deadline=None)
@given(ruleset=rulesets(), facts=studies())
def test_expiry_is_exactly_the_winning_rules_date(ruleset: RuleSet, facts: StudyFacts) -> None:
    """Exactly one outcome wins and its date is the expiry (the latest of the candidates)."""
    result = evaluate(ruleset, facts)
    winners = [o for o in result.outcomes if o.winner]
    assert len(winners) == 1 and winners[0].expires == result.expires
    assert all(o.expires is None or o.expires <= result.expires for o in result.outcomes)


@settings(max_examples=300, deadline=None)
@given(
    study=st.dates(min_value=date(1950, 1, 1), max_value=date(2030, 1, 1)),
    age_days=st.integers(min_value=0, max_value=100 * 366),
    delay=st.integers(min_value=-40, max_value=4000),
    broken=st.booleans(),
)
def test_default_preset_agrees_with_the_hand_written_rule(
    study: date, age_days: int, delay: int, broken: bool
) -> None:
    """The engine with the default preset gives the same date as the original default rule."""
    reception = study + timedelta(days=delay)
    birth = _da(study - timedelta(days=age_days))
    study_da = "2023" if broken else _da(study)
    expires, flagged = default_expiry(study_da, birth, reception)
    facts = StudyFacts("c", "1", study_date=study_da, birth_date=birth, received=reception)
    result = evaluate(load_preset("default"), facts)
    assert result.expires == expires
    assert result.study_date_flagged == flagged


def test_study_date_after_reception_falls_back_and_flags() -> None:
    """A study date later than the reception date is not trusted: the reception date anchors."""
    facts = StudyFacts("c", "1", study_date="20300101", received=date(2026, 1, 10))
    result = evaluate(load_preset("default"), facts)
    assert result.anchor == "reception-date" and result.study_date_flagged
    assert result.expires == date(2036, 1, 10)


def test_unknown_birth_date_flags_age_rules() -> None:
    """Without a birth date an age-based rule gives no date and the study is flagged."""
    facts = StudyFacts("c", "1", study_date="20200101", received=date(2020, 2, 1))
    result = evaluate(load_preset("default"), facts)
    assert FLAG_BIRTH_DATE in result.flags and result.expires == date(2030, 1, 1)


def test_recorded_longer_period_wins() -> None:
    """A longer period recorded by the facility wins over the rules."""
    ruleset = load_preset("default")
    ruleset = RuleSet(**{**ruleset.__dict__, "recorded_period": RecordedPeriod("StudyComments")})
    facts = StudyFacts(
        "c", "1", study_date="20200101", received=date(2020, 2, 1), recorded_period="30Y"
    )
    result = evaluate(ruleset, facts)
    assert result.expires == date(2050, 1, 1) and "facility-recorded-period" in result.rule


def test_recorded_shorter_period_does_not_shorten() -> None:
    """A shorter recorded period never shortens what the rules require."""
    ruleset = load_preset("default")
    ruleset = RuleSet(**{**ruleset.__dict__, "recorded_period": RecordedPeriod("StudyComments")})
    facts = StudyFacts(
        "c", "1", study_date="20200101", received=date(2020, 2, 1), recorded_period="2Y"
    )
    assert evaluate(ruleset, facts).expires == date(2030, 1, 1)


def test_period_text_forms() -> None:
    """Recorded periods accept bare years, Y/M/W/D units and ISO 8601's leading P."""
    assert parse_period_text("10") == Period(years=10)
    assert parse_period_text(" p5y6m ") == Period(years=5, months=6)
    assert parse_period_text("2W3D") == Period(days=17)
    for bad in ("", "0", "ten", "5X", "P", "999Y"):
        assert parse_period_text(bad) is None, bad


@given(day=dates, years=st.integers(0, 50), months=st.integers(0, 30), days=st.integers(0, 400))
def test_period_is_never_shorter_than_its_parts(
    day: date, years: int, months: int, days: int
) -> None:
    """Adding a period lands no earlier than adding its years alone, and after the start."""
    end = Period(years, months, days).after(day)
    assert end >= add_years(day, years) >= day
