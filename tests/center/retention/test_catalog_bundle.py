"""One bundle catalogued at once: the rows and expiries of cataloguing instance by instance."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from center.core.archive import Archive, open_archive
from center.core.cataloging import catalog_bundle
from center.core.retention import install_rules
from common.bundle import format as fmt
from common.bundle.reader import IndexEntry
from common.retention_rules import preset_text
from common.sqlitedb import transaction
from tests.center.retention.conftest import (
    BASIC_TEXT_SR,
    CR_IMAGE,
    MG_IMAGE,
    Clinic,
    instance_header,
)
from tests.conftest import NOW

RECEIVED = date(2024, 2, 1)
# rules that look at each fact an instance may add: modality and recorded period (japan),
# body part and SOP class (the two added here)
MORE_RULES = f"""
[facility_period]
tag = "StudyComments"

[[rule]]
id = "chest"
description = "Chest: 10 years"
period = {{ years = 10 }}
anchor = "study-date"
match.body_part = ["CHEST"]

[[rule]]
id = "mammography-objects"
description = "Mammography objects: 12 years"
period = {{ years = 12 }}
anchor = "study-date"
match.sop_class = ["{MG_IMAGE}"]
"""
RULES = {"england": preset_text("england"), "japan-and-more": preset_text("japan") + MORE_RULES}
# (study, patient, study date, series, modality, SOP class, body part, StudyComments), in
# bundle order: a report, a body part, another modality or SOP class and recorded periods
# arrive after a study's first images, and the studies' instances interleave
INSTANCES = [
    ("1.1", "P1", "20231005", "1", "CR", CR_IMAGE, "", ""),
    ("1.2", "P1", "20240110", "1", "MG", MG_IMAGE, "", ""),
    ("1.1", "P1", "20231005", "1", "CR", CR_IMAGE, "", ""),
    ("2.1", "P2", "20221201", "1", "CR", CR_IMAGE, "", ""),
    ("1.1", "P1", "20231005", "2", "SR", BASIC_TEXT_SR, "", ""),
    ("1.1", "P1", "20231005", "1", "CR", CR_IMAGE, "", ""),
    ("1.2", "P1", "20240110", "1", "MG", MG_IMAGE, "BREAST", ""),
    ("1.1", "P1", "20231005", "1", "CR", CR_IMAGE, "chest", ""),
    ("2.1", "P2", "20221201", "1", "CR", CR_IMAGE, "", "1Y"),
    ("1.1", "P1", "20231005", "1", "CR", CR_IMAGE, "CHEST", ""),
    ("2.1", "P2", "20221201", "1", "CR", CR_IMAGE, "", "7Y"),
    ("3.1", "", "20230301", "1", "CR", CR_IMAGE, "", ""),
    ("2.1", "P2", "20221201", "1", "CR", CR_IMAGE, "", "1Y"),
    ("2.1", "P2", "20221201", "1", "CR", MG_IMAGE, "", ""),
    ("1.2", "P1", "20240110", "1", "MG", MG_IMAGE, "BREAST", ""),
    ("3.1", "", "20230301", "2", "PR", CR_IMAGE, "", ""),
    ("3.1", "", "20230301", "1", "CR", CR_IMAGE, "", ""),
    ("1.1", "P1", "20231005", "2", "SR", BASIC_TEXT_SR, "", ""),
]


def _entries(clinic: Clinic) -> list[IndexEntry]:
    """The bundle's index entries, their objects written to the clinic's store."""
    entries = []
    for n, (study, patient, day, series, modality, sop_class, part, comments) in enumerate(
        INSTANCES
    ):
        header = instance_header(
            study,
            n,
            study_date=day,
            series=series,
            patient=patient,
            modality=modality,
            sop_class=sop_class,
            body_part=part,
        )
        entries.append(clinic.stored(header, n, {"StudyComments": comments} if comments else {}))
    return entries


@pytest.fixture
def two_archives(center_template: Path, tmp_path: Path) -> Iterator[tuple[Archive, Archive]]:
    with ExitStack() as stack:
        opened = []
        for name in ("bulk", "reference"):
            root = shutil.copytree(center_template, tmp_path / name)
            opened.append(stack.enter_context(open_archive(root)))
        yield opened[0], opened[1]


def _snapshot(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every catalog row the cataloguing writes, and the audit log."""
    tables = ("patients", "studies", "series", "instances", "retention_facts", "audit")
    return {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1")] for t in tables}  # noqa: S608


@pytest.mark.parametrize("rules", sorted(RULES))
def test_bundle_catalogues_as_one_expiry_for_per_instance_does(
    two_archives: tuple[Archive, Archive], tmp_path: Path, rules: str
) -> None:
    """A bundle with many instances per study gets the same catalog rows, expiries and audited
    extensions as asking the retention hook for every instance."""
    for archive in two_archives:
        install_rules(archive.conn, RULES[rules], origin=rules, operator="Admin", now=NOW)
        Clinic(archive.conn, archive.store, tmp_path).study("9.1", study_date="20190310")
    bulk, reference = two_archives
    clinic = Clinic(reference.conn, reference.store, tmp_path, bundles=1)
    with transaction(reference.conn):
        bundle_id = clinic._bundle("clinic-1", RECEIVED)
        for entry in _entries(clinic):
            clinic._catalog("clinic-1", bundle_id, entry, RECEIVED)
    info = fmt.BagInfo(
        bundle_id, "dev-1", "fp", b"\0", "clinic-1", "2024-01-31", len(INSTANCES), 4, 0
    )
    with transaction(bulk.conn):
        studies, new = catalog_bundle(
            bulk,
            info,
            _entries(Clinic(bulk.conn, bulk.store, tmp_path)),
            {},
            RECEIVED,
            "Importer",
            datetime.combine(RECEIVED, time(12), UTC),
            status="imported",
            stored_count=len(INSTANCES),
        )
    assert (studies, new) == (4, len(INSTANCES))
    assert _snapshot(bulk.conn) == _snapshot(reference.conn)
