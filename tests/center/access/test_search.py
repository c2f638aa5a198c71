"""`center search`: criteria, name matching, sorting, limits, indexes and the audit entry."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from center.cli.app import app
from center.cli.search import SortKey
from center.core import audit
from center.core.archive import Archive
from center.core.holds import add_hold
from center.core.search import (
    SORT_KEYS,
    StudyQuery,
    find_studies,
    label,
    name_keys,
    parse_date_range,
    query_plan,
    search,
)
from center.core.studyref import patient_label, study_label
from common.errors import QueryInvalid
from tests.center.access.conftest import Imported, add_study, cli_env
from tests.conftest import NOW


def _accessions(archive: Archive, query: StudyQuery, **kwargs: object) -> list[str]:
    result = find_studies(archive.conn, query, **kwargs)  # type: ignore[arg-type]
    return [h.accession for h in result.hits]


@pytest.fixture
def people(archive: Archive) -> Archive:
    """Five studies of four patients with names in three scripts."""
    add_study(archive.conn, patient_name="MÜLLER^JÜRGEN", patient_id="P1", accession="A1")
    add_study(
        archive.conn,
        patient_name="Müller^Jürgen",
        patient_id="P1",
        accession="A2",
        study_date="20210305",
        modalities=("MR", "SR"),
        expiry="2031-03-05",
    )
    add_study(archive.conn, patient_name="Mullins^Ann", patient_id="P2", accession="A3")
    add_study(
        archive.conn,
        patient_name="Yamada^Tarou=山田^太郎=やまだ^たろう",
        patient_id="P3",
        accession="B7",
        study_date="",
        facility="clinic-2",
    )
    add_study(
        archive.conn,
        patient_name="Doe^Jane",
        patient_id="X-9",
        accession="A4",
        study_date="20191231",
        expiry="2029-12-31",
    )
    return archive


def test_name_prefix_ignores_case(people: Archive) -> None:
    """A lower-case prefix finds the name stored in capitals and in mixed case."""
    assert _accessions(people, StudyQuery(patient_name="müller")) == ["A1", "A2"]


def test_name_without_accents_finds_accented(people: Archive) -> None:
    """'muller^jurgen' finds Müller^Jürgen: accents are optional in the pattern."""
    assert _accessions(people, StudyQuery(patient_name="muller^jurgen")) == ["A1", "A2"]


def test_accented_pattern_does_not_match_other_letters(people: Archive) -> None:
    """'müll' does not find Mullins: an accent given is an accent required."""
    assert "A3" not in _accessions(people, StudyQuery(patient_name="müll"))


def test_name_wildcards(people: Archive) -> None:
    """'*' and '?' match as in DICOM: 'mu??in*' finds Mullins only."""
    assert _accessions(people, StudyQuery(patient_name="mu??in*")) == ["A3"]


def test_ideographic_and_phonetic_groups(people: Archive) -> None:
    """Each '=' group of a PN is searchable: kanji and hiragana both find Yamada."""
    assert _accessions(people, StudyQuery(patient_name="山田")) == ["B7"]
    assert _accessions(people, StudyQuery(patient_name="やまだ^た*")) == ["B7"]


def test_name_keys_fold_each_group() -> None:
    """Keys are case-folded per group, with an unaccented twin, trailing '^' dropped."""
    keys = json.loads(name_keys("Ødegård^Zoë^^^="))
    assert keys == ["odegard^zoe", "ødegård^zoë"]


def test_patient_id_is_exact_unless_wildcarded(people: Archive) -> None:
    """'P' alone matches no ID; 'P*' matches P1, P2 and P3."""
    assert _accessions(people, StudyQuery(patient_id="P")) == []
    assert sorted(_accessions(people, StudyQuery(patient_id="P*"))) == ["A1", "A2", "A3", "B7"]


def test_bracket_in_a_pattern_is_literal(people: Archive) -> None:
    """'[' in a criterion is a character, not a GLOB set."""
    assert _accessions(people, StudyQuery(accession="[AB]*")) == []


def test_date_range_is_inclusive_and_skips_undated(people: Archive) -> None:
    """A range includes both ends and leaves out studies without a date."""
    query = StudyQuery(date_from=date(2019, 12, 31), date_to=date(2020, 1, 2))
    assert _accessions(people, query) == ["A4", "A1", "A3"]
    assert "B7" not in _accessions(people, StudyQuery(date_to=date(2030, 1, 1)))


def test_modality_matches_any_series(people: Archive) -> None:
    """A study with MR and SR series is found by SR."""
    assert _accessions(people, StudyQuery(modality="sr")) == ["A2"]


def test_modality_with_other_criteria_matches_any_series(people: Archive) -> None:
    """With a date range or a patient too, the modality is still any series' modality."""
    in_2021 = StudyQuery(date_from=date(2021, 1, 1), date_to=date(2021, 12, 31), modality="sr")
    assert _accessions(people, in_2021) == ["A2"]
    assert _accessions(people, StudyQuery(patient_id="P1", modality="MR")) == ["A2"]
    assert _accessions(people, StudyQuery(patient_id="P2", modality="MR")) == []


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (
            StudyQuery(date_from=date(2010, 1, 1), date_to=date(2010, 12, 31), modality="MR"),
            "studies_date",
        ),
        (StudyQuery(patient_id="P1", modality="MR"), "patients_patient_id"),
    ],
)
def test_a_narrowing_criterion_drives_a_modality_search(
    people: Archive, query: StudyQuery, index: str
) -> None:
    """With a date range or a patient, SQLite walks that index and checks each study's series;
    it does not look up every study of the modality (most of the catalog, from a cold cache)."""
    plan = query_plan(people.conn, query)
    assert index in plan[0] and "INTEGER PRIMARY KEY" not in plan[0], plan


def test_a_modality_alone_is_searched_by_its_list(people: Archive) -> None:
    """A modality alone: its studies are listed from the series_modality index, then looked up."""
    plan = query_plan(people.conn, StudyQuery(modality="MR"))
    assert "INTEGER PRIMARY KEY" in plan[0] and any("series_modality" in p for p in plan), plan


def test_expiring_before(people: Archive) -> None:
    """Only studies whose expiry is strictly before the date are found."""
    assert _accessions(people, StudyQuery(expiring_before=date(2031, 3, 5))) == ["A4"]


def test_criteria_combine_with_and(people: Archive) -> None:
    """Facility and name together narrow to their intersection."""
    assert _accessions(people, StudyQuery(facility="clinic-2", patient_name="m*")) == []


def test_sort_limit_and_total(people: Archive) -> None:
    """Sorted by date descending with limit 2: the two newest, and the total of all."""
    result = find_studies(people.conn, StudyQuery(), sort="date", descending=True, limit=2)
    assert [h.accession for h in result.hits] == ["A2", "A3"]
    assert result.total == 5 and result.truncated


def test_rows_carry_instances_and_size(people: Archive) -> None:
    """Each row counts the study's instances and bytes across its series."""
    [hit] = find_studies(people.conn, StudyQuery(accession="A2")).hits
    assert (hit.instances, hit.bytes, hit.modalities, hit.study_date) == (
        4,
        400,
        "MR/SR",
        "2021-03-05",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01", (date(2024, 3, 1), date(2024, 3, 1))),
        ("2024-01-01..2024-06-30", (date(2024, 1, 1), date(2024, 6, 30))),
        ("..20231231", (None, date(2023, 12, 31))),
        ("20240101-", (date(2024, 1, 1), None)),
    ],
)
def test_date_range_forms(text: str, expected: tuple[date | None, date | None]) -> None:
    """ISO and DICOM dates, closed and open ranges are understood."""
    assert parse_date_range(text) == expected


@pytest.mark.parametrize("text", ["2024-13-01", "yesterday", ".."])
def test_bad_dates_name_the_criterion(text: str) -> None:
    """A date that cannot be read is a query-invalid error naming --date."""
    with pytest.raises(QueryInvalid, match="--date"):
        parse_date_range(text)


def test_reversed_range_is_refused(people: Archive) -> None:
    """A range whose start is after its end is an error, not an empty result."""
    with pytest.raises(QueryInvalid):
        find_studies(people.conn, StudyQuery(date_from=date(2021, 1, 1), date_to=date(2020, 1, 1)))


def test_held_filter_finds_studies_on_legal_hold(people: Archive) -> None:
    """--held finds the studies a hold on their patient covers; --not-held the others."""
    add_hold(
        people.conn, facility_id="clinic-1", patient_id="P1", reason="case 7", operator="L", now=NOW
    )
    held = find_studies(people.conn, StudyQuery(held=True)).hits
    assert [h.accession for h in held] == ["A1", "A2"] and all(h.held for h in held)
    assert "A1" not in _accessions(people, StudyQuery(held=False))


def test_name_prefix_uses_the_name_key_index(people: Archive) -> None:
    """A name prefix is an index search on the name keys, not a scan."""
    plan = " ".join(
        str(row[3])
        for row in people.conn.execute(
            "EXPLAIN QUERY PLAN SELECT patient_pk FROM patient_name_keys WHERE key GLOB ?",
            ("müller*",),
        )
    )
    assert "SEARCH" in plan and "SCAN" not in plan


def test_search_is_audited_with_criteria_and_studies(people: Archive) -> None:
    """The audit entry names operator, criteria, studies and patients, by data-free labels."""
    result = search(people.conn, StudyQuery(patient_id="P2"), operator="val", now=NOW)
    [entry] = audit.entries(people.conn, action="search")
    assert (entry.operator, entry.event_code) == ("val", audit.EVENT_QUERY)
    assert entry.details["criteria"] == {"patient_id": label("patient_id", "P2")}
    uid = result.hits[0].study_instance_uid
    assert entry.details["shown"] == [study_label("clinic-1", uid)]
    assert entry.details["patients"] == [patient_label("clinic-1", "P2")]
    assert "P2" not in json.dumps(entry.details) and uid not in json.dumps(entry.details)


def test_cli_sort_keys_match_the_core() -> None:
    """Every --sort choice of the CLI is a sort key of the core, and vice versa."""
    assert {k.value for k in SortKey} == set(SORT_KEYS)


def test_imported_studies_are_found_through_the_cli(imported: Imported) -> None:
    """A viewer finds an imported patient's studies by name prefix, as JSON."""
    study = imported.manifest.a_studies[0]
    prefix = study.patient_name.split("^")[0].split("=")[0].lower()
    result = CliRunner().invoke(
        app, ["search", "--name", prefix, "--json"], env=cli_env(imported.root, "val")
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    uids = {h["study_instance_uid"] for h in doc["hits"]}
    assert study.study_instance_uid in uids
    expected = {
        s.study_instance_uid
        for s in imported.manifest.a_studies
        if s.patient_name.lower().startswith(prefix)
    }
    assert uids == expected


def test_table_output_has_one_row_per_study(imported: Imported) -> None:
    """The table lists each study's accession once, with the total in its title."""
    result = CliRunner().invoke(app, ["search"], env=cli_env(imported.root, "exp"))
    assert result.exit_code == 0, result.output
    n = len(imported.manifest.a_studies)
    assert f"{n} studies found" in result.stdout
    for study in imported.manifest.a_studies:
        assert result.stdout.count(study.accession) == 1
