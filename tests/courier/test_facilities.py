"""Facilities: the clinics a laptop visits, in <home>/facilities.toml."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import ConfigError, FacilityExists, FacilityUnknown
from courier.core.facilities import (
    Facility,
    VisitOverrides,
    add_facility,
    facilities_path,
    get_facility,
    load_facilities,
    receipts_for,
    remove_facility,
    visit_settings,
)
from courier.core.source import parse_source

CLINIC = Facility("clinic-042", "Clinique du Lac", "/mnt/terminal", receipts="/mnt/terminal/r")


def test_added_facility_is_read_back(tmp_path: Path) -> None:
    """A facility added is listed and shown with every setting."""
    add_facility(tmp_path, CLINIC)
    assert load_facilities(tmp_path) == {"clinic-042": CLINIC}
    assert get_facility(tmp_path, "clinic-042").receipts == "/mnt/terminal/r"


def test_adding_twice_is_refused_unless_replacing(tmp_path: Path) -> None:
    """An existing facility is not overwritten by accident."""
    add_facility(tmp_path, CLINIC)
    other = Facility("clinic-042", "Renamed", "dicom://PACS@10.0.0.2:104")
    with pytest.raises(FacilityExists):
        add_facility(tmp_path, other)
    add_facility(tmp_path, other, replace_existing=True)
    assert get_facility(tmp_path, "clinic-042").name == "Renamed"


def test_removed_facility_is_unknown(tmp_path: Path) -> None:
    """After removal the facility is unknown, and the error lists the configured ones."""
    add_facility(tmp_path, CLINIC)
    add_facility(tmp_path, Facility("clinic-7", "Seven", "/t7"))
    remove_facility(tmp_path, "clinic-042")
    with pytest.raises(FacilityUnknown, match="clinic-7"):
        get_facility(tmp_path, "clinic-042")


@pytest.mark.parametrize(
    ("facility", "what"),
    [
        (Facility("../etc", "x", "/t"), "facility id"),
        (Facility("c1", "x", ""), "source is empty"),
        (Facility("c1", "x", "dicom://PACS@host"), "dicom://AET@host:port"),
        (Facility("c1", "x", "dicom://@host:104"), "AE title"),
        (Facility("c1", "x", "dicom://PACS@host:70000"), "port"),
        (Facility("c1", "x", "/t", rule="Nope:A"), "rule"),
        (Facility("c1", "x", "/t", capacity_threshold="lots"), "capacity_threshold"),
        (Facility("c1", "x", "/t", calling_aet="A" * 17), "AE title"),
    ],
)
def test_invalid_settings_are_refused_by_field(
    tmp_path: Path, facility: Facility, what: str
) -> None:
    """Each invalid field gives a config error that names it; nothing is written."""
    with pytest.raises(ConfigError, match=what):
        add_facility(tmp_path, facility)
    assert not facilities_path(tmp_path).exists()


def test_damaged_file_is_named(tmp_path: Path) -> None:
    """An edited, invalid facilities.toml is reported with its path and the field."""
    facilities_path(tmp_path).write_text('[facility.c1]\nname = "x"\nsource = "/t"\ncolour = 1\n')
    with pytest.raises(ConfigError, match=r"facilities.toml \[facility.c1\]: unknown field"):
        load_facilities(tmp_path)


def test_options_override_the_file(tmp_path: Path) -> None:
    """A visit's options win over the configured settings, which fill the rest."""
    add_facility(tmp_path, CLINIC)
    visit = visit_settings(tmp_path, "clinic-042", VisitOverrides(rule="StudyID:X"))
    assert (visit.rule, visit.source, visit.receipts) == (
        "StudyID:X",
        "/mnt/terminal",
        "/mnt/terminal/r",
    )


def test_unconfigured_facility_with_a_source_is_a_one_off_visit(tmp_path: Path) -> None:
    """`courier pull ID --source DIR` works without configuring ID first."""
    visit = visit_settings(tmp_path, "clinic-9", VisitOverrides(source="/t9"))
    assert (visit.facility_id, visit.source, visit.rule) == ("clinic-9", "/t9", "AccessionNumber:A")
    with pytest.raises(FacilityUnknown):
        visit_settings(tmp_path, "clinic-9", VisitOverrides())


def test_receipts_override_needs_no_configuration(tmp_path: Path) -> None:
    """`courier deliver ID --receipts DIR` works for an unconfigured facility."""
    assert receipts_for(tmp_path, "clinic-9", tmp_path / "r") == tmp_path / "r"
    with pytest.raises(FacilityUnknown):
        receipts_for(tmp_path, "clinic-9", None)


@settings(max_examples=25)
@given(name=st.text(min_size=1, max_size=30), source=st.text(min_size=1, max_size=40))
def test_any_text_round_trips_through_the_file(
    tmp_path_factory: pytest.TempPathFactory, name: str, source: str
) -> None:
    """Names and folder paths with quotes, backslashes or accents survive the TOML file."""
    source = source if source.strip() and not source.startswith(("dicom:", "~")) else "/t"
    home = tmp_path_factory.mktemp("home")
    facility = Facility("c1", name, source)
    add_facility(home, facility)
    assert load_facilities(home)["c1"] == facility


def test_a_home_of_an_unknown_user_is_a_clear_error(tmp_path: Path) -> None:
    """`~nobody-here/terminal` names the field and asks for a full path (was an internal error)."""
    with pytest.raises(ConfigError, match=r"--source: .* no user of that name") as caught:
        parse_source("~no-such-user-here/terminal")
    assert caught.value.hint == "Give the folder's full path."
