"""Selection rules: which instances a clinic flagged for archiving."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.dicomhdr import TagRef
from common.errors import ConfigError
from courier.core.selection import (
    DEFAULT_RULE,
    FlagFileRule,
    PrefixRule,
    build_rule,
    parse_rule,
)


def test_default_rule_takes_accessions_starting_with_a() -> None:
    """The default rule selects AccessionNumber A..., not B..."""
    rule = build_rule(parse_rule(DEFAULT_RULE))
    assert rule.selects({"AccessionNumber": "A123"})
    assert rule.selects({"AccessionNumber": " a123"})
    assert not rule.selects({"AccessionNumber": "B123"})
    assert not rule.selects({})


def test_another_keyword_and_prefix() -> None:
    """StudyID:ARC selects on the Study ID."""
    rule = build_rule(parse_rule("StudyID:ARC"))
    assert rule.selects({"StudyID": "arc-77"}) and not rule.selects({"StudyID": "77"})
    assert rule.tags() == (TagRef(keyword="StudyID"),)


def test_tag_number_rule_reads_that_element() -> None:
    """(0011,1010):A names an element by number; its values are keyed by the canonical text."""
    rule = build_rule(parse_rule("(0011,1010):A"))
    assert rule.tags() == (TagRef(group=0x0011, element=0x1010),)
    assert rule.selects({"(0011,1010)": "ARCHIVE"})


def test_private_creator_rule_is_parsed() -> None:
    """(0011,ACME Clinic,10):Y names element 10 of ACME Clinic's private block."""
    rule = build_rule(parse_rule("(0011,ACME Clinic,10):Y"))
    [tag] = rule.tags()
    assert (tag.group, tag.creator, tag.element, tag.private) == (0x11, "ACME Clinic", 0x10, True)
    assert rule.selects({tag.key: "yes"})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("AccessionNumber", "not TAG:PREFIX"),
        ("NoSuchKeyword:A", "neither a DICOM keyword"),
        ("AccessionNumber:", "prefix"),
        ("(0010,ACME,10):A", "odd group"),
        ("(0002,0010):A", "file-meta"),
        ("flag-file:", "needs a file name"),
    ],
)
def test_invalid_rules_are_named(text: str, field: str) -> None:
    """A malformed rule is a config error naming the option and what is wrong."""
    with pytest.raises(ConfigError, match=field) as caught:
        parse_rule(text, field="facility x: rule")
    assert "facility x: rule" in caught.value.message


def test_flag_file_lists_accessions_and_study_uids() -> None:
    """A flag file selects listed accessions and Study Instance UIDs; comments are ignored."""
    rule = FlagFileRule.from_text(
        "archive.txt", "# to archive\nA77\n\n 1.2.840.1234.5 \n#B1\nRX-9\n"
    )
    assert rule.selects({"AccessionNumber": "A77"})
    assert rule.selects({"AccessionNumber": "RX-9"})
    assert rule.selects({"StudyInstanceUID": "1.2.840.1234.5", "AccessionNumber": "Z"})
    assert not rule.selects({"AccessionNumber": "B1"})
    assert not rule.selects({"AccessionNumber": "a77"})  # exact, unlike a prefix


def test_absent_flag_file_selects_nothing_and_says_so() -> None:
    """Without its file, a flag-file rule selects nothing and its description says so."""
    rule = FlagFileRule.from_text("archive.txt", None)
    assert not rule.selects({"AccessionNumber": "A1"})
    assert "absent" in rule.describe()


def test_digest_changes_with_the_flag_file_content() -> None:
    """Editing the flag file changes the rule's digest (not-selected files are re-examined)."""
    first = FlagFileRule.from_text("f", "A1\n").digest()
    assert first == FlagFileRule.from_text("f", "A1\n# note\n").digest()
    assert first != FlagFileRule.from_text("f", "A1\nA2\n").digest()


@given(value=st.text(max_size=12), prefix=st.text(min_size=1, max_size=4).filter(str.strip))
def test_prefix_rule_is_a_case_insensitive_prefix_test(value: str, prefix: str) -> None:
    """PrefixRule selects exactly the values starting with the prefix, ignoring case."""
    rule = PrefixRule(TagRef(keyword="AccessionNumber"), prefix.strip())
    expected = value.strip().upper().startswith(prefix.strip().upper())
    assert rule.selects({"AccessionNumber": value}) is expected
