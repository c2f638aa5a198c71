"""Storage receipts (contract C3): signed, kept, pushed to the drive, verifiable later."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from center.core import audit
from center.core.archive import Archive, CenterKeys
from center.core.receiptcheck import show_receipt, verify_receipt_file
from center.core.storage_receipts import receipt_id_for
from common.crypto import decrypt_bytes
from common.errors import ReceiptUnknown
from common.receipts import instance_list_sha256, verify_receipt
from tests.center.intake.conftest import OBJECTS, World, run_import, sha256_of
from tests.conftest import NOW


@pytest.fixture
def imported(world: World, archive: Archive, keys: CenterKeys) -> str:
    """The receipt id of the world's bundle, imported."""
    run_import(archive, keys, world.drive)
    return receipt_id_for(world.bundle.name)


def _doc(archive: Archive, receipt_id: str) -> dict[str, object]:
    path = archive.paths.receipts / "clinic-1" / f"{receipt_id}.json"
    loaded: dict[str, object] = json.loads(path.read_bytes())
    return loaded


def test_receipt_is_signed_by_the_center(archive: Archive, imported: str) -> None:
    """The kept JSON verifies with the center's key and names the center as issuer."""
    folder = archive.paths.receipts / "clinic-1"
    body = (folder / f"{imported}.json").read_bytes()
    assert verify_receipt(
        body, (folder / f"{imported}.json.sig").read_bytes(), archive.card.signing_public
    )
    assert json.loads(body)["issuer"]["fingerprint"] == archive.card.fingerprint
    assert (folder / f"{imported}.html").read_text().startswith("<!DOCTYPE html>")


def test_receipt_lists_each_instance_with_its_hash(
    world: World, archive: Archive, imported: str
) -> None:
    """Every stored instance appears once with its sha256, and each study's list hash holds."""
    doc = _doc(archive, imported)
    studies = doc["studies"]
    assert isinstance(studies, list)
    pairs = {(i["sop_instance_uid"], i["sha256"]) for s in studies for i in s["instances"]}
    assert {sha for _, sha in pairs} == {sha256_of(p) for p in world.files}
    assert len(pairs) == OBJECTS
    for study in studies:
        listed = [(i["sop_instance_uid"], i["sha256"]) for i in study["instances"]]
        assert study["instance_list_sha256"] == instance_list_sha256(listed)
        assert study["instance_count"] == len(listed)


def test_receipt_promises_each_study_expiry(archive: Archive, imported: str) -> None:
    """Each study's expiry on the receipt is recorded as a promise and matches the catalog."""
    doc = _doc(archive, imported)
    promised = dict(
        archive.conn.execute("SELECT study_instance_uid, expiry FROM receipt_promises").fetchall()
    )
    cataloged = dict(
        archive.conn.execute("SELECT study_instance_uid, expiry FROM studies").fetchall()
    )
    on_receipt = {s["study_instance_uid"]: s["expiry"] for s in doc["studies"]}  # type: ignore[attr-defined]
    assert on_receipt == promised == cataloged


def test_receipt_carries_a_valid_audit_checkpoint(archive: Archive, imported: str) -> None:
    """The checkpoint is signed by the center and is the audit entry of this import."""
    cp = _doc(archive, imported)["audit_checkpoint"]
    assert isinstance(cp, dict)
    checkpoint = audit.Checkpoint(cp["seq"], cp["hash"], cp["at"], cp["signature"])
    assert audit.checkpoint_valid(checkpoint, archive.card.signing_public)
    row = archive.conn.execute(
        "SELECT target, hash FROM audit WHERE seq = ?", (cp["seq"],)
    ).fetchone()
    assert tuple(row) == (f"bundle:{imported.removeprefix('storage-')}", cp["hash"])


def test_drive_outbox_holds_the_receipt_for_the_courier(
    world: World, archive: Archive, imported: str
) -> None:
    """The three files are on the drive, encrypted to the device, identical once decrypted."""
    folder = archive.paths.receipts / "clinic-1"
    for suffix in (".json", ".json.sig", ".html"):
        sealed = world.drive / "outbox" / "clinic-1" / f"{imported}{suffix}.age"
        plain = decrypt_bytes(sealed.read_bytes(), world.device.age.identity)
        assert plain == (folder / f"{imported}{suffix}").read_bytes()


def test_receipt_is_written_again_after_a_crash_before_its_files(
    world: World, archive: Archive, keys: CenterKeys, imported: str
) -> None:
    """With the files lost after the commit, the next import writes the same bytes again."""
    folder = archive.paths.receipts / "clinic-1"
    original = {p.name: p.read_bytes() for p in folder.iterdir()}
    shutil.rmtree(folder)
    shutil.rmtree(world.drive / "outbox")
    archive.conn.execute("UPDATE storage_receipts SET files_written = 0")
    run_import(archive, keys, world.drive)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == original
    assert (world.drive / "outbox" / "clinic-1" / f"{imported}.json.age").is_file()


def test_verify_passes_on_the_centers_copy(archive: Archive, imported: str) -> None:
    """Every check passes on an untouched receipt."""
    result = verify_receipt_file(archive, imported, operator="Op", now=NOW)
    assert result.ok, result.checks
    assert [c.name for c in result.checks] == [
        "signature",
        "center-copy",
        "audit-checkpoint",
        "instance-lists",
        "stored",
    ]


def _failed(archive: Archive, ref: str) -> set[str]:
    return {
        c.name for c in verify_receipt_file(archive, ref, operator="Op", now=NOW).checks if not c.ok
    }


def test_verify_detects_an_altered_copy(archive: Archive, imported: str, tmp_path: Path) -> None:
    """A clinic's copy whose JSON was edited fails the signature and center-copy checks."""
    folder = archive.paths.receipts / "clinic-1"
    for name in (f"{imported}.json", f"{imported}.json.sig"):
        shutil.copy(folder / name, tmp_path / name)
    edited = (
        (tmp_path / f"{imported}.json").read_bytes().replace(b'"expiry":"20', b'"expiry":"21', 1)
    )
    (tmp_path / f"{imported}.json").write_bytes(edited)
    assert _failed(archive, str(tmp_path / f"{imported}.json")) == {"signature", "center-copy"}


def test_verify_detects_a_rewritten_audit_log(archive: Archive, imported: str) -> None:
    """If the audit entry the receipt's checkpoint signs was changed, verification says so."""
    seq = _doc(archive, imported)["audit_checkpoint"]["seq"]  # type: ignore[index]
    archive.conn.execute("UPDATE audit SET hash = ? WHERE seq = ?", ("00" * 32, seq))
    assert _failed(archive, imported) == {"audit-checkpoint"}


def test_verify_detects_an_object_no_longer_stored(archive: Archive, imported: str) -> None:
    """A listed instance whose object left the store fails the stored check."""
    sha = next(iter(archive.store))
    path = archive.store.path(sha)
    path.chmod(0o644)
    path.unlink()
    assert _failed(archive, imported) == {"stored"}


def test_show_returns_the_document_and_is_audited(archive: Archive, imported: str) -> None:
    """show gives the receipt's document and records the access."""
    path, doc = show_receipt(archive, imported, operator="Reader", now=NOW)
    assert doc["receipt_id"] == imported and path.name == f"{imported}.json"
    last = archive.conn.execute(
        "SELECT operator, action, target FROM audit ORDER BY seq DESC"
    ).fetchone()
    assert tuple(last) == ("Reader", "receipt", f"receipt:{imported}")


def test_unknown_receipt_is_its_own_error(archive: Archive) -> None:
    """An id the center never issued raises receipt-unknown."""
    with pytest.raises(ReceiptUnknown):
        show_receipt(archive, "storage-nothing", operator="Reader", now=NOW)


def test_printable_page_counts_instances_and_names_no_uid(archive: Archive, imported: str) -> None:
    """The HTML shows each study's instance count and expiry, not the listed UIDs."""
    page = (archive.paths.receipts / "clinic-1" / f"{imported}.html").read_text()
    doc = _doc(archive, imported)
    for study in doc["studies"]:  # type: ignore[attr-defined]
        assert f'<td class="n">{study["instance_count"]}</td>' in page
        assert study["expiry"] in page
        assert not [i for i in study["instances"] if i["sop_instance_uid"] in page]
