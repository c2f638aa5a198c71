"""Loading and validating retention rules files: every problem names its line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError, RulesInvalid
from common.retention import Period
from common.retention_rules import list_presets, load_rules, preset_text

GOOD = """\
[ruleset]
format = 1
name = "test"
title = "Test rules"

[[rule]]
id = "x-ray"
description = "X-ray images"
period = { years = 2 }
anchor = "study-date"
match.modality = ["cr", "DX"]

[[rule]]
id = "children"
description = "Minors"
period = { years = 25 }
anchor = "birth-date"

[rule.match]
age_at_study = { max = 17 }

[fallback]
description = "Anything else"
period = { years = 5, months = 6 }
anchor = "study-date"
"""


def _problem_lines(text: str) -> list[str]:
    with pytest.raises(RulesInvalid) as caught:
        load_rules(text, source="rules.toml")
    return caught.value.message.splitlines()[1:]


def test_valid_file_loads_with_normalised_values() -> None:
    """A valid file gives its rules in order, modalities upper-cased, periods exact."""
    rules = load_rules(GOOD, source="rules.toml")
    assert [r.id for r in rules.rules] == ["x-ray", "children"]
    assert rules.rules[0].match.modality == frozenset({"CR", "DX"})
    assert rules.rules[1].match.age_at_study is not None
    assert rules.rules[1].match.age_at_study.max == 17
    assert rules.fallback.period == Period(years=5, months=6)
    assert rules.rules[1].line == 13


def test_unknown_field_names_line_rule_and_field() -> None:
    """A misspelt match key is reported with its line, its rule and the known keys."""
    lines = _problem_lines(GOOD.replace('match.modality = ["cr", "DX"]', 'match.modalty = ["CR"]'))
    assert len(lines) == 1
    assert 'rules.toml, line 11: [[rule]] #1 (id "x-ray") field match.modalty' in lines[0]
    assert "unknown field" in lines[0] and "modality" in lines[0]


def test_field_inside_a_subtable_is_located() -> None:
    """An error in a [rule.match] sub-table points at the key's own line."""
    lines = _problem_lines(
        GOOD.replace("age_at_study = { max = 17 }", "age_at_study = { max = -1 }")
    )
    assert lines == [
        '- rules.toml, line 20: [[rule]] #2 (id "children") field match.age_at_study.max: '
        "must be a whole number of years from 0 to 150"
    ]


def test_bad_anchor_is_named_with_the_choices() -> None:
    """An unknown anchor lists the valid anchors."""
    lines = _problem_lines(GOOD.replace('anchor = "birth-date"', 'anchor = "birthday"'))
    assert "line 17" in lines[0] and "field anchor" in lines[0]
    assert "study-date, reception-date, birth-date, last-visit" in lines[0]


def test_every_problem_is_reported_at_once() -> None:
    """Several problems in one file are all listed, in file order."""
    text = GOOD.replace("period = { years = 2 }", "period = { years = 0 }").replace(
        'id = "children"', 'id = "x-ray"'
    )
    lines = _problem_lines(text)
    assert len(lines) == 2
    assert "line 9" in lines[0] and "period is zero" in lines[0]
    assert "line 14" in lines[1] and "duplicate id" in lines[1]


def test_missing_fallback_is_required() -> None:
    """A rules file without a fallback is refused: every study must get a date."""
    text = GOOD.split("[fallback]")[0]
    assert any("[fallback]" in line and "required" in line for line in _problem_lines(text))


def test_invalid_regular_expression_is_named() -> None:
    """A description pattern that does not compile is reported on its line."""
    text = GOOD.replace('match.modality = ["cr", "DX"]', 'match.description = "scree(n"')
    lines = _problem_lines(text)
    assert "line 11" in lines[0] and "not a valid regular expression" in lines[0]


def test_toml_syntax_error_keeps_tomllib_position() -> None:
    """A TOML syntax error is reported with the line tomllib found."""
    with pytest.raises(RulesInvalid) as caught:
        load_rules(
            GOOD.replace('anchor = "study-date"\nmatch', "anchor = study-date\nmatch"),
            source="r.toml",
        )
    assert "not valid TOML" in caught.value.message and "line 10" in caught.value.message


def test_format_version_is_required() -> None:
    """A file without `format = 1` is refused (the format is versioned from day one)."""
    lines = _problem_lines(GOOD.replace("format = 1\n", ""))
    assert "[ruleset]" in lines[0] and "format" in lines[0]


def test_recorded_period_tag_is_normalised() -> None:
    """A facility-recorded period tag is stored in its canonical (GGGG,EEEE) form."""
    text = GOOD + '\n[facility_period]\ntag = "(0011,10a0)"\nanchor = "last-visit"\n'
    rules = load_rules(text, source="rules.toml")
    assert rules.recorded_period is not None
    assert rules.recorded_period.tag == "(0011,10A0)"
    assert rules.recorded_period.anchor == "last-visit"


def test_recorded_period_with_bad_tag_is_refused() -> None:
    """A tag that is neither a keyword, (gggg,eeee) nor a private reference is named."""
    lines = _problem_lines(GOOD + '\n[facility_period]\ntag = "12,34"\n')
    assert "line 28" in lines[0] and "[facility_period] field tag" in lines[0]


def test_error_is_a_config_error_with_its_own_reference() -> None:
    """RulesInvalid is a configuration error with the retention-rules-invalid reference."""
    with pytest.raises(ConfigError) as caught:
        load_rules("", source="empty.toml")
    assert caught.value.ref == "retention-rules-invalid"


def test_every_preset_is_a_labelled_example_with_sources() -> None:
    """Each shipped preset loads, says it is not legal advice, and cites a source."""
    presets = {p.name: p for p in list_presets()}
    assert set(presets) == {"default", "japan", "england", "us-mammography"}
    for name, preset in presets.items():
        assert "not legal advice" in preset.disclaimer.lower(), name
        assert "NOT LEGAL ADVICE" in preset_text(name), name
        assert preset.sources and preset.rules >= 1, name


def test_unknown_preset_lists_the_known_ones() -> None:
    """Asking for a preset that does not exist names the available ones."""
    with pytest.raises(ConfigError) as caught:
        preset_text("atlantis")
    assert "japan" in caught.value.hint


def test_the_how_to_guides_example_is_a_valid_rules_file() -> None:
    """The rules file shown in docs/how-to/retention-rules.md loads as it is written."""
    guide = (Path(__file__).parents[2] / "docs" / "how-to" / "retention-rules.md").read_text()
    example = guide.split("```toml\n", 1)[1].split("```", 1)[0]
    rules = load_rules(example, source="how-to example")
    assert [r.id for r in rules.rules] == ["x-ray-images", "children", "screening"]
    assert rules.recorded_period is not None
    assert rules.recorded_period.tag == "(0011,CLINIC-ARCHIVE,01)"
