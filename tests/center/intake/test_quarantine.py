"""Objects that fail a check with the center key are quarantined; the rest is still stored."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.importreport import PARTIAL
from common.bundle import format as fmt
from common.crypto import generate_age_keypair
from tests.center.intake.conftest import OBJECTS, World, count, run_import, sha256_of
from tests.center.intake.kit import write_bundle
from tests.conftest import NOW

BAD = 2


def _wrong_hash(seq: int, entry: dict[str, Any]) -> None:
    if seq == BAD:
        entry["sha256"] = "ab" * 32


def _wrong_uid(seq: int, entry: dict[str, Any]) -> None:
    if seq == BAD:
        entry["header"]["sop_instance_uid"] = "1.2.3.4.5.6.7.8.9"


CASES: dict[str, tuple[dict[str, Any], str]] = {
    "sha256 mismatch": ({"edit_entry": _wrong_hash}, "sha256 mismatch"),
    "uid mismatch": ({"edit_entry": _wrong_uid}, "SOP Instance UID mismatch"),
    "not dicom": ({"payloads": {BAD: b"this is no DICOM file at all" * 40}}, "not readable DICOM"),
}


def _bundle(world: World, **kwargs: Any) -> None:
    world.bundle.rename(world.root / "set-aside")
    write_bundle(world.drive, world.device, world.recipients, world.files, **kwargs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_object_failing_a_check_is_quarantined(
    world: World, archive: Archive, keys: CenterKeys, case: str
) -> None:
    """The object is quarantined with its reason; every other object is stored."""
    kwargs, reason = CASES[case]
    _bundle(world, **kwargs)
    outcome = run_import(archive, keys, world.drive).outcomes[0]
    assert (outcome.status, outcome.stored, outcome.quarantined) == (PARTIAL, OBJECTS - 1, 1)
    held = archive.conn.execute("SELECT item, seq, reason FROM quarantine").fetchall()
    assert [(r[0], r[1]) for r in held] == [(fmt.object_relpath(BAD), BAD)]
    assert reason in held[0][2]
    assert count(archive.conn, "instances") == OBJECTS - 1


def test_object_encrypted_to_another_key_is_quarantined(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """An object that does not decrypt with the center key is quarantined as such."""
    other = [generate_age_keypair().recipient]
    _bundle(world, object_recipients={BAD: other})
    outcome = run_import(archive, keys, world.drive).outcomes[0]
    assert (outcome.status, outcome.quarantined) == (PARTIAL, 1)
    reason = archive.conn.execute("SELECT reason FROM quarantine").fetchone()[0]
    assert "does not decrypt" in reason


def test_quarantine_keeps_the_ciphertext_and_a_report(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """The folder holds the object's bytes as found and a report naming bundle, object, reason."""
    _bundle(world, edit_entry=_wrong_uid)
    bundle = next((world.drive / fmt.BUNDLES_DIR).iterdir())
    run_import(archive, keys, world.drive)
    folder = world.archive_root / "quarantine" / bundle.name
    kept = folder / fmt.object_relpath(BAD)
    assert kept.read_bytes() == (bundle / fmt.object_relpath(BAD)).read_bytes()
    report = json.loads((folder / "report.json").read_text())
    assert report["bundle_id"] == bundle.name
    assert [(i["item"], i["kept"]) for i in report["items"]] == [
        (fmt.object_relpath(BAD), f"quarantine/{bundle.name}/{fmt.object_relpath(BAD)}")
    ]
    assert "UID mismatch" in report["items"][0]["reason"]


def test_quarantine_report_holds_no_patient_data(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """Neither the report nor the catalog's reasons name a patient, accession or UID."""
    _bundle(world, edit_entry=_wrong_uid)
    run_import(archive, keys, world.drive)
    rows = archive.conn.execute(
        "SELECT p.patient_name, p.patient_id, st.accession, st.study_instance_uid "
        "FROM studies st JOIN patients p USING (patient_pk)"
    ).fetchall()
    needles = {str(v) for row in rows for v in row if str(v)}
    assert needles
    text = next((world.archive_root / "quarantine").rglob("report.json")).read_text()
    text += json.dumps([tuple(r) for r in archive.conn.execute("SELECT * FROM quarantine")])
    assert not [n for n in needles if n in text]


def test_receipt_lists_only_what_was_stored_and_says_what_was_not(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """The storage receipt of a partial bundle omits the quarantined object and names it."""
    _bundle(world, edit_entry=_wrong_hash)
    run_import(archive, keys, world.drive)
    doc = json.loads(archive.conn.execute("SELECT document FROM storage_receipts").fetchone()[0])
    listed = [i for s in doc["studies"] for i in s["instances"]]
    assert doc["totals"]["instances"] == len(listed) == OBJECTS - 1
    assert doc["not_stored"] == [
        {
            "item": fmt.object_relpath(BAD),
            "reason": "object decrypts to other bytes than the index promises (sha256 mismatch)",
        }
    ]
    assert doc["warnings"]


def test_damaged_copy_of_an_object_already_stored_counts_as_stored(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A later bundle's damaged copy of bytes the archive holds is not needed: it is stored."""
    run_import(archive, keys, world.drive)
    later = write_bundle(
        world.drive, world.device, world.recipients, world.files[:2], now=NOW + timedelta(hours=1)
    )
    (later / fmt.object_relpath(1)).unlink()
    outcome = run_import(archive, keys, world.drive).outcomes[1]
    assert (outcome.status, outcome.stored, outcome.quarantined) == ("imported", 2, 0)


def test_index_naming_a_stored_object_for_another_instance_is_caught(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """An index that claims bytes already stored for another instance is quarantined."""
    run_import(archive, keys, world.drive)
    other = sha256_of(world.files[0])

    def claim_other(seq: int, entry: dict[str, Any]) -> None:
        if seq == 1:
            entry["sha256"] = other

    later = NOW + timedelta(hours=1)
    write_bundle(
        world.drive, world.device, world.recipients, world.files[1:2], now=later,
        edit_entry=claim_other,
    )  # fmt: skip
    outcome = run_import(archive, keys, world.drive).outcomes[1]
    assert (outcome.status, outcome.quarantined) == (PARTIAL, 1)
    reason = archive.conn.execute("SELECT reason FROM quarantine").fetchone()[0]
    assert "SOP Instance UID mismatch" in reason
