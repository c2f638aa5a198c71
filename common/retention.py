"""Retention: how long the center must keep a study (DESIGN.md s8). Pure functions, no I/O.

A *rule set* is a list of rules and a fallback (loaded from TOML by
:mod:`common.retention_rules`). A rule matches a study on any of modality, SOP class, body part,
study description pattern, facility, the patient's age, and "no later matching study of the
patient at the facility"; it gives a :class:`Period` counted from an *anchor*:

``study-date``      the Study Date (0008,0020); the reception date when the study date is
                    missing, invalid or after the reception date (the study is then flagged)
``reception-date``  the date the courier received the study at the clinic
``birth-date``      the patient's Birth Date (0010,0030): "until the 25th birthday" is 25 years
                    from the birth date
``last-visit``      the latest date of any study of the patient at the same facility

The expiry is the **latest** date any matching rule gives, so the longest obligation always
wins; the fallback applies only when no rule gives a date. A period the facility recorded in the
accompanying information (a configurable tag) also counts, so it applies when it is longer.

Unknown facts never shorten a period: an age condition on a patient without a valid birth date
counts as met (the study is flagged), and a rule that cannot compute its anchor gives no date.

Calendar arithmetic: years, then months, then days are added. 29 February plus one year is
28 February; 31 January plus one month is the last day of February. A period therefore ends on
the last day the calendar allows, never on the first day of the following month.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

ANCHORS = ("study-date", "reception-date", "birth-date", "last-visit")

# Flags explaining why a study's expiry deserves a human look.
FLAG_STUDY_DATE = "study-date-unusable"
FLAG_BIRTH_DATE = "birth-date-unknown"
FLAG_RECORDED_PERIOD = "recorded-period-unreadable"
FLAG_FALLBACK = "no-rule-matched"
FLAG_BEFORE_RECEPTION = "expires-before-reception"

RECORDED_RULE_ID = "facility-recorded-period"


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
    """Completed years of age on *day* (a 29 February birthday counts on 28 February)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class Period:
    """A retention period; added to a date as years, then months, then days."""

    years: int = 0
    months: int = 0
    days: int = 0

    def after(self, day: date) -> date:
        return add_months(add_years(day, self.years), self.months) + timedelta(days=self.days)

    def describe(self) -> str:
        parts = [
            f"{n} {unit}{'' if n == 1 else 's'}"
            for n, unit in ((self.years, "year"), (self.months, "month"), (self.days, "day"))
            if n
        ]
        return " ".join(parts) or "0 days"


_PERIOD_TEXT = re.compile(r"^P?(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


def parse_period_text(value: str) -> Period | None:
    """A period as a facility records it: ``10`` (years), ``10Y``, ``5Y6M``, ``P2Y``, ``90D``.

    Case and spaces are ignored; None when the text is empty or not a period.
    """
    text = "".join(value.split()).upper()
    if not text:
        return None
    if text.isdigit():
        return Period(years=int(text)) if 0 < int(text) <= 200 else None
    found = _PERIOD_TEXT.match(text)
    if not found or not any(found.groups()):
        return None
    years, months, weeks, days = (int(g) if g else 0 for g in found.groups())
    period = Period(years=years, months=months, days=weeks * 7 + days)
    if period == Period() or years > 200:
        return None
    return period


@dataclass(frozen=True)
class AgeRange:
    """Completed years of age, both bounds inclusive; None means unbounded."""

    min: int | None = None
    max: int | None = None

    def contains(self, age: int) -> bool:
        return (self.min is None or age >= self.min) and (self.max is None or age <= self.max)

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min}" if self.min == self.max else f"{self.min} to {self.max}"
        return f"{self.min} or over" if self.min is not None else f"{self.max} or under"


@dataclass(frozen=True)
class Match:
    """Conditions a study must all meet; a list is met when any of its values is."""

    modality: frozenset[str] = frozenset()
    sop_class: frozenset[str] = frozenset()
    body_part: frozenset[str] = frozenset()
    description: str = ""  # regular expression, searched case-insensitively
    facility: frozenset[str] = frozenset()
    age_at_study: AgeRange | None = None
    age_at_last_visit: AgeRange | None = None
    no_later_matching_study: bool = False


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    period: Period
    anchor: str
    match: Match = field(default_factory=Match)
    line: int = 0  # where the rule starts in its TOML file (0 when not from a file)


@dataclass(frozen=True)
class RecordedPeriod:
    """Where the facility records a longer period: a DICOM tag, counted from *anchor*."""

    tag: str  # a keyword, "(GGGG,EEEE)" or "(GGGG,CREATOR,EE)" (common.dicomhdr.TagRef)
    anchor: str = "study-date"


@dataclass(frozen=True)
class RuleSet:
    name: str
    title: str
    disclaimer: str
    sources: tuple[str, ...]
    rules: tuple[Rule, ...]
    fallback: Rule
    recorded_period: RecordedPeriod | None = None
    sha256: str = ""


@dataclass(frozen=True)
class StudyFacts:
    """What the rules look at for one study (from its headers and the catalog)."""

    facility_id: str
    study_instance_uid: str
    patient_id: str = ""
    study_date: str = ""  # DA, as received
    birth_date: str = ""  # DA, as received
    received: date | None = None  # reception date (first bundle that brought the study)
    modalities: frozenset[str] = frozenset()
    sop_classes: frozenset[str] = frozenset()
    body_parts: frozenset[str] = frozenset()
    description: str = ""
    recorded_period: str = ""  # raw value of the configured tag, "" if absent
    bundle_id: str = ""  # the bundle being imported, when called during an import

    def merged(self, other: StudyFacts) -> StudyFacts:
        """These facts with *other*'s sets added (instances of the same study)."""
        return replace(
            self,
            modalities=self.modalities | other.modalities,
            sop_classes=self.sop_classes | other.sop_classes,
            body_parts=self.body_parts | other.body_parts,
            recorded_period=longest_recorded(self.recorded_period, other.recorded_period),
        )


def longest_recorded(a: str, b: str) -> str:
    """Of two recorded period texts, the one giving the later date (unreadable ones kept)."""
    pa, pb = parse_period_text(a), parse_period_text(b)
    if pa is None or pb is None:
        return a if pb is None and a else b
    probe = date(2000, 2, 29)
    return a if pa.after(probe) >= pb.after(probe) else b


@dataclass(frozen=True)
class RuleOutcome:
    """How one rule fared for a study: whether it matched, why, and the date it gives."""

    rule_id: str
    description: str
    matched: bool
    reasons: tuple[str, ...]
    anchor: str  # the anchor actually used ("reception-date" if the study date fell back)
    anchor_date: date | None
    period: Period
    expires: date | None
    winner: bool = False


@dataclass(frozen=True)
class Expiry:
    """A computed expiry date and why (the study is kept until *expires*, inclusive)."""

    expires: date
    anchor: str
    rule: str
    study_date_flagged: bool
    flags: tuple[str, ...] = ()
    outcomes: tuple[RuleOutcome, ...] = ()


def effective_date(facts: StudyFacts) -> tuple[date | None, bool]:
    """The study date, or the reception date when it is unusable; and whether it fell back."""
    study = parse_da(facts.study_date)
    if study is not None and (facts.received is None or study <= facts.received):
        return study, False
    return facts.received, True


def _static_reasons(match: Match, facts: StudyFacts) -> tuple[bool, list[str]]:
    """Check the conditions that depend only on the study itself."""
    reasons: list[str] = []
    checks: list[tuple[frozenset[str], frozenset[str], str]] = [
        (match.modality, facts.modalities, "modality"),
        (match.sop_class, facts.sop_classes, "SOP class"),
        (match.body_part, frozenset(b.upper() for b in facts.body_parts), "body part"),
        (match.facility, frozenset({facts.facility_id}), "facility"),
    ]
    for wanted, have, label in checks:
        if not wanted:
            continue
        common = sorted(wanted & have)
        if not common:
            shown = ", ".join(sorted(have)) or "none"
            return False, [f"{label} {shown} is not one of {', '.join(sorted(wanted))}"]
        reasons.append(f"{label} {', '.join(common)}")
    if match.description:
        if not re.search(match.description, facts.description, re.IGNORECASE):
            return False, [f"description does not match /{match.description}/"]
        reasons.append(f"description matches /{match.description}/")
    return True, reasons


class _Context:
    """Facts derived from the study and the patient's other studies at the facility."""

    def __init__(self, facts: StudyFacts, others: Sequence[StudyFacts]) -> None:
        self.facts = facts
        self.others = [o for o in others if o.study_instance_uid != facts.study_instance_uid]
        self.day, self.fell_back = effective_date(facts)
        self.birth = parse_da(facts.birth_date)
        visits = [d for d in (effective_date(o)[0] for o in self.others) if d is not None]
        self.last_visit = max([*visits, *([self.day] if self.day else [])], default=None)

    def age_check(self, wanted: AgeRange, on: date | None, label: str) -> tuple[bool | None, str]:
        """True or False, or None when the age is unknown (the condition then counts as met)."""
        if self.birth is None or on is None:
            return None, f"{label} unknown (no valid birth date): assumed {wanted.describe()}"
        age = age_on(self.birth, on)
        if wanted.contains(age):
            return True, f"{label} {age}"
        return False, f"{label} {age} is not {wanted.describe()}"

    def later_match(self, rule: Rule) -> StudyFacts | None:
        for other in self.others:
            day = effective_date(other)[0]
            if day and self.day and day > self.day and _static_reasons(rule.match, other)[0]:
                return other
        return None

    def anchor(self, anchor: str) -> tuple[str, date | None]:
        if anchor == "study-date":
            return ("reception-date" if self.fell_back else "study-date"), self.day
        if anchor == "reception-date":
            return anchor, self.facts.received
        if anchor == "birth-date":
            return anchor, self.birth
        return anchor, self.last_visit


def _outcome(rule: Rule, ctx: _Context) -> tuple[RuleOutcome, bool]:
    """Evaluate *rule*; the flag says whether an unknown birth date was involved."""
    matched, reasons = _static_reasons(rule.match, ctx.facts)
    unknown_birth = False
    if matched:
        for wanted, on, label in (
            (rule.match.age_at_study, ctx.day, "age at the study"),
            (rule.match.age_at_last_visit, ctx.last_visit, "age at the last visit"),
        ):
            if wanted is None:
                continue
            ok, why = ctx.age_check(wanted, on, label)
            if ok is False:
                matched, reasons = False, [why]
                break
            reasons.append(why)
            unknown_birth = unknown_birth or ok is None
    if matched and rule.match.no_later_matching_study:
        later = ctx.later_match(rule)
        if later is not None:
            matched = False
            reasons = [f"a later matching study exists ({effective_date(later)[0]})"]
        else:
            reasons.append("no later matching study of the patient at this facility")
    if matched and not reasons:
        reasons.append("no conditions: applies to every study")
    anchor, anchor_date = ctx.anchor(rule.anchor)
    expires = rule.period.after(anchor_date) if matched and anchor_date else None
    if matched and anchor_date is None:
        reasons.append(f"no {anchor.replace('-', ' ')} known: the rule gives no date")
        unknown_birth = unknown_birth or anchor == "birth-date"
    outcome = RuleOutcome(
        rule.id,
        rule.description,
        matched,
        tuple(reasons),
        anchor,
        anchor_date,
        rule.period,
        expires,
    )
    return outcome, matched and unknown_birth


def describe_rule(rule: Rule, anchor: str) -> str:
    """A one-line summary such as ``2 years from the study date`` or ``until the 25th birthday``."""
    if anchor == "birth-date" and rule.period == Period(years=rule.period.years):
        n = rule.period.years
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"until the {n}{suffix} birthday"
    return f"{rule.period.describe()} from the {anchor.replace('-', ' ')}"


def evaluate(ruleset: RuleSet, facts: StudyFacts, others: Sequence[StudyFacts] = ()) -> Expiry:
    """The expiry of the study *facts* under *ruleset*; *others* are the patient's other
    studies at the same facility (for ``last-visit`` and ``no_later_matching_study``).

    *facts.received* must be set: it is the fallback anchor of an unusable study date.
    """
    if facts.received is None:
        raise ValueError("the reception date of the study is needed to compute its expiry")
    ctx = _Context(facts, others)
    flags: list[str] = [FLAG_STUDY_DATE] if ctx.fell_back else []
    outcomes: list[RuleOutcome] = []
    candidates: list[tuple[date, int, Rule]] = []
    for position, rule in enumerate(ruleset.rules):
        outcome, birth_unknown = _outcome(rule, ctx)
        outcomes.append(outcome)
        if birth_unknown and FLAG_BIRTH_DATE not in flags:
            flags.append(FLAG_BIRTH_DATE)
        if outcome.expires is not None:
            candidates.append((outcome.expires, -position, rule))
    if not candidates:
        outcome, _ = _outcome(ruleset.fallback, ctx)
        outcomes.append(outcome)
        flags.append(FLAG_FALLBACK)
        if outcome.expires is None:
            raise ValueError(f"rule set {ruleset.name}: the fallback gives no date")
        candidates.append((outcome.expires, -len(ruleset.rules), ruleset.fallback))
    if ruleset.recorded_period is not None and facts.recorded_period:
        period = parse_period_text(facts.recorded_period)
        if period is None:
            flags.append(FLAG_RECORDED_PERIOD)
        else:
            recorded = Rule(
                RECORDED_RULE_ID,
                f"period the facility recorded ({facts.recorded_period.strip()})",
                period,
                ruleset.recorded_period.anchor,
            )
            outcome, _ = _outcome(recorded, ctx)
            outcomes.append(outcome)
            if outcome.expires is not None:
                candidates.append((outcome.expires, -len(outcomes), recorded))
    expires, _, winner = max(candidates, key=lambda c: (c[0], c[1]))
    marked = tuple(
        replace(o, winner=True) if o.rule_id == winner.id and o.expires == expires else o
        for o in outcomes
    )
    anchor = next(o.anchor for o in marked if o.winner)
    if expires < facts.received:
        flags.append(FLAG_BEFORE_RECEPTION)
    return Expiry(
        expires=expires,
        anchor=anchor,
        rule=f"{ruleset.name}/{winner.id}: {describe_rule(winner, anchor)}",
        study_date_flagged=ctx.fell_back,
        flags=tuple(flags),
        outcomes=marked,
    )
