"""Retention rules files (TOML): loading, validation with line numbers, and the shipped presets.

The format is described in docs/how-to/retention-rules.md. Every problem found is reported at
once, each naming the file, the line, the table (``[[rule]] #2 (id "x-ray")``) and the field,
so an operator can fix a file in one pass. tomllib reports syntax errors with their line; for
semantic errors this module finds the line itself by scanning the source for table headers and
keys (tomllib keeps no positions).

Presets are package data (``common/presets/*.toml``): clearly labelled examples, not legal
advice, each citing its sources. ``default`` is the built-in rule set used by an archive that
has not installed one.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from common.dicomhdr import TagRef
from common.errors import ConfigError, RulesInvalid
from common.retention import (
    ANCHORS,
    AgeRange,
    Match,
    Period,
    RecordedPeriod,
    Rule,
    RuleSet,
)

FORMAT_VERSION = 1
DEFAULT_PRESET = "default"
FALLBACK_ID = "fallback"
MAX_PROBLEMS = 20

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=")

_TOP = {"ruleset", "rule", "fallback", "facility_period"}
_RULESET = {"name", "title", "format", "disclaimer", "sources"}
_RULE = {"id", "description", "period", "anchor", "match"}
_FALLBACK = {"description", "period", "anchor"}
_PERIOD = {"years", "months", "days"}
_MATCH_LISTS = {"modality", "sop_class", "body_part", "facility"}
_MATCH_AGES = {"age_at_study", "age_at_last_visit"}
_MATCH = _MATCH_LISTS | _MATCH_AGES | {"description", "no_later_matching_study"}
_RECORDED = {"tag", "anchor", "description"}
_FALLBACK_ANCHORS = ("study-date", "reception-date", "last-visit")

Path_ = tuple[str | int, ...]


class _Lines:
    """Where each table header and key starts in the TOML source (1-based lines)."""

    def __init__(self, text: str) -> None:
        self.at: dict[Path_, int] = {}
        table: Path_ = ()
        rules = 0
        in_string = False
        for number, line in enumerate(text.splitlines(), start=1):
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_string = not in_string
                if not in_string:
                    continue
            if in_string:
                continue
            if header := _HEADER.match(line):
                parts = [p.strip() for p in header.group(2).split(".")]
                if header.group(1) == "[[" and parts == ["rule"]:
                    rules += 1
                    table = ("rule", rules)
                elif parts[0] == "rule" and rules:
                    table = ("rule", rules, *parts[1:])
                else:
                    table = tuple(parts)
                self.at.setdefault(table, number)
            elif key := _KEY.match(line):
                path = (*table, *(p.strip() for p in key.group(1).split(".")))
                self.at.setdefault(path, number)
                for cut in range(len(table) + 1, len(path)):
                    self.at.setdefault(path[:cut], number)

    def line(self, path: Path_) -> int:
        for cut in range(len(path), 0, -1):
            if path[:cut] in self.at:
                return self.at[path[:cut]]
        return 0


@dataclass(frozen=True)
class Problem:
    line: int
    where: str
    message: str

    def render(self, source: str) -> str:
        place = f"{source}, line {self.line}" if self.line else source
        return f"{place}: {self.where}: {self.message}"


class _Checker:
    def __init__(self, text: str) -> None:
        self.lines = _Lines(text)
        self.problems: list[Problem] = []
        self.rule_ids: dict[int, str] = {}

    def where(self, path: Path_) -> str:
        if path[0] == "rule" and len(path) > 1:
            rid = self.rule_ids.get(int(path[1]))
            table = f"[[rule]] #{path[1]}" + (f' (id "{rid}")' if rid else "")
            rest = path[2:]
        else:
            table, rest = f"[{path[0]}]", path[1:]
        return f"{table} field {'.'.join(str(p) for p in rest)}" if rest else table

    def add(self, path: Path_, message: str) -> None:
        self.problems.append(Problem(self.lines.line(path), self.where(path), message))

    def keys(self, table: dict[str, Any], allowed: set[str], path: Path_) -> None:
        for key in table:
            if key not in allowed:
                self.add(
                    (*path, key), f"unknown field; expected one of {', '.join(sorted(allowed))}"
                )

    def text(self, table: dict[str, Any], key: str, path: Path_, *, required: bool) -> str:
        value = table.get(key)
        if value is None:
            if required:
                self.add(path, f"the field {key} is required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.add((*path, key), "must be a non-empty string")
            return ""
        return value.strip()

    def strings(self, value: Any, path: Path_) -> list[str]:
        if not isinstance(value, list) or not value:
            self.add(path, "must be a non-empty list of strings (leave it out to match any)")
            return []
        if not all(isinstance(v, str) and v.strip() for v in value):
            self.add(path, "every item must be a non-empty string")
            return []
        return [v.strip() for v in value]

    def period(self, value: Any, path: Path_) -> Period:
        if not isinstance(value, dict):
            self.add(path, "must be a table such as { years = 10 } (years, months, days)")
            return Period(years=1)
        before = len(self.problems)
        self.keys(value, _PERIOD, path)
        numbers: dict[str, int] = {}
        for key in _PERIOD & value.keys():
            item = value[key]
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 200 * 366:
                self.add((*path, key), "must be a whole number from 0")
            else:
                numbers[key] = item
        period = Period(**numbers)
        if period == Period() and len(self.problems) == before:
            self.add(path, "the period is zero: give years, months or days")
        return period

    def anchor(self, table: dict[str, Any], path: Path_, allowed: tuple[str, ...]) -> str:
        value = table.get("anchor")
        if value is None:
            self.add(path, "the field anchor is required")
            return allowed[0]
        if value not in allowed:
            self.add((*path, "anchor"), f"{value!r} is not one of {', '.join(allowed)}")
            return allowed[0]
        return str(value)

    def age(self, value: Any, path: Path_) -> AgeRange | None:
        if not isinstance(value, dict) or not value:
            self.add(path, "must be a table such as { max = 17 } or { min = 17, max = 17 }")
            return None
        self.keys(value, {"min", "max"}, path)
        bounds: dict[str, int] = {}
        for key in ("min", "max"):
            item = value.get(key)
            if item is None:
                continue
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 150:
                self.add((*path, key), "must be a whole number of years from 0 to 150")
            else:
                bounds[key] = item
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            self.add(path, "min is greater than max")
        return AgeRange(bounds.get("min"), bounds.get("max"))

    def match(self, value: Any, path: Path_) -> Match:
        if not isinstance(value, dict):
            self.add(path, "must be a table of conditions")
            return Match()
        self.keys(value, _MATCH, path)
        lists: dict[str, frozenset[str]] = {}
        for key in _MATCH_LISTS & value.keys():
            items = self.strings(value[key], (*path, key))
            if key == "sop_class":
                for uid in items:
                    if not _UID.match(uid) or len(uid) > 64:
                        self.add((*path, key), f"{uid!r} is not a UID (digits and dots)")
            lists[key] = frozenset(
                i if key in ("sop_class", "facility") else i.upper() for i in items
            )
        pattern = ""
        if "description" in value:
            pattern = self.text(value, "description", path, required=False)
            try:
                re.compile(pattern)
            except re.error as exc:
                self.add((*path, "description"), f"not a valid regular expression ({exc})")
        ages = {k: self.age(value[k], (*path, k)) for k in _MATCH_AGES & value.keys()}
        later = value.get("no_later_matching_study", False)
        if not isinstance(later, bool):
            self.add((*path, "no_later_matching_study"), "must be true or false")
            later = False
        return Match(
            modality=lists.get("modality", frozenset()),
            sop_class=lists.get("sop_class", frozenset()),
            body_part=lists.get("body_part", frozenset()),
            description=pattern,
            facility=lists.get("facility", frozenset()),
            age_at_study=ages.get("age_at_study"),
            age_at_last_visit=ages.get("age_at_last_visit"),
            no_later_matching_study=later,
        )

    def rule(self, table: Any, number: int) -> Rule | None:
        path: Path_ = ("rule", number)
        if not isinstance(table, dict):
            self.add(path, "must be a table")
            return None
        rid = table.get("id")
        if isinstance(rid, str):
            self.rule_ids[number] = rid
        self.keys(table, _RULE, path)
        rid = self.text(table, "id", path, required=True)
        if rid and (not _SLUG.match(rid) or rid == FALLBACK_ID):
            self.add((*path, "id"), "must be lower-case letters, digits and dashes (not fallback)")
        return Rule(
            id=rid,
            description=self.text(table, "description", path, required=True),
            period=self.period(table.get("period"), (*path, "period")),
            anchor=self.anchor(table, path, ANCHORS),
            match=self.match(table.get("match", {}), (*path, "match")),
            line=self.lines.line(path),
        )


def _recorded(check: _Checker, value: Any) -> RecordedPeriod | None:
    path: Path_ = ("facility_period",)
    if not isinstance(value, dict):
        check.add(path, "must be a table with a tag")
        return None
    check.keys(value, _RECORDED, path)
    tag = check.text(value, "tag", path, required=True)
    if tag:
        try:
            tag = TagRef.parse(tag).key
        except ValueError as exc:
            check.add((*path, "tag"), str(exc))
    anchor = "study-date"
    if "anchor" in value:
        anchor = check.anchor(value, path, _FALLBACK_ANCHORS)
    return RecordedPeriod(tag=tag, anchor=anchor)


def load_rules(text: str, *, source: str) -> RuleSet:
    """Parse and validate a rules file; raise :class:`RulesInvalid` listing every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesInvalid(f"{source}: not valid TOML: {exc}") from exc
    check = _Checker(text)
    for key in doc:
        if key not in _TOP:
            check.add((key,), f"unknown table; expected {', '.join(sorted(_TOP))}")
    head = doc.get("ruleset")
    if not isinstance(head, dict):
        check.add(("ruleset",), "the [ruleset] table (name, title, format) is required")
        head = {}
    check.keys(head, _RULESET, ("ruleset",))
    name = check.text(head, "name", ("ruleset",), required=True)
    if name and not _SLUG.match(name):
        check.add(("ruleset", "name"), "must be lower-case letters, digits and dashes")
    if "format" in head and head["format"] != FORMAT_VERSION:
        check.add(("ruleset", "format"), f"this software reads format {FORMAT_VERSION}")
    elif "format" not in head:
        check.add(("ruleset",), f"the field format is required (format = {FORMAT_VERSION})")
    title = check.text(head, "title", ("ruleset",), required=True)
    disclaimer = check.text(head, "disclaimer", ("ruleset",), required=False)
    sources = head.get("sources", [])
    if "sources" in head:
        sources = check.strings(sources, ("ruleset", "sources"))
    tables = doc.get("rule", [])
    if not isinstance(tables, list):
        check.add(("rule",), "rules are written as [[rule]] tables")
        tables = []
    rules = [r for n, t in enumerate(tables, start=1) if (r := check.rule(t, n)) is not None]
    seen: dict[str, int] = {}
    for number, rule in enumerate(rules, start=1):
        if rule.id and rule.id in seen:
            check.add(("rule", number, "id"), f"duplicate id (also rule #{seen[rule.id]})")
        seen.setdefault(rule.id, number)
    fallback = Rule(FALLBACK_ID, "fallback", Period(years=1), "study-date")
    raw = doc.get("fallback")
    if not isinstance(raw, dict):
        check.add(("fallback",), "the [fallback] table (description, period, anchor) is required")
    else:
        check.keys(raw, _FALLBACK, ("fallback",))
        fallback = Rule(
            id=FALLBACK_ID,
            description=check.text(raw, "description", ("fallback",), required=True),
            period=check.period(raw.get("period"), ("fallback", "period")),
            anchor=check.anchor(raw, ("fallback",), _FALLBACK_ANCHORS),
            line=check.lines.line(("fallback",)),
        )
    recorded = _recorded(check, doc["facility_period"]) if "facility_period" in doc else None
    if check.problems:
        shown = [p.render(source) for p in check.problems[:MAX_PROBLEMS]]
        more = len(check.problems) - len(shown)
        raise RulesInvalid(
            f"{source} has {len(check.problems)} problem(s):\n"
            + "\n".join(f"- {s}" for s in shown)
            + (f"\n- and {more} more" if more > 0 else "")
        )
    return RuleSet(
        name=name,
        title=title,
        disclaimer=disclaimer,
        sources=tuple(sources),
        rules=tuple(rules),
        fallback=fallback,
        recorded_period=recorded,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


@lru_cache(maxsize=16)
def parse_cached(text: str, source: str) -> RuleSet:
    """:func:`load_rules` memoised by content (rule sets are immutable)."""
    return load_rules(text, source=source)


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    disclaimer: str
    sources: tuple[str, ...]
    rules: int


@lru_cache(maxsize=32)
def preset_text(name: str) -> str:
    """The TOML source of the shipped preset *name* (read once: an import asks for the active
    rules for every instance)."""
    if not _SLUG.match(name):
        raise ConfigError(f"no retention preset named {name!r}")
    resource = resources.files("common.presets").joinpath(f"{name}.toml")
    if not resource.is_file():
        known = ", ".join(p.name for p in list_presets())
        raise ConfigError(
            f"no retention preset named {name!r}",
            hint=f"Choose one of: {known} (`center retention presets` lists them).",
        )
    return resource.read_text("utf-8")


def load_preset(name: str) -> RuleSet:
    return parse_cached(preset_text(name), f"preset {name}")


def list_presets() -> list[Preset]:
    """Every shipped preset, by name."""
    found = []
    for item in sorted(resources.files("common.presets").iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            name = item.name[: -len(".toml")]
            rules = parse_cached(item.read_text("utf-8"), f"preset {name}")
            found.append(
                Preset(name, rules.title, rules.disclaimer, rules.sources, len(rules.rules))
            )
    return found
