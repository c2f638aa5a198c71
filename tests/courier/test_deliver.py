"""Delivering the center's documents to the clinic (contracts C2 and C3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from center.core.archive import CenterKeys
from common.crypto import generate_age_keypair, generate_signing_seed, recipient_of
from common.receipts import verify_receipt
from courier.core.deliver import deliver
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from tests.conftest import NOW
from tests.courier.conftest import put_in_outbox, storage_receipt

BUNDLE = "20261120T100000Z-0000abcd"
INSTANCES = {"1.2.826.0.1.1": b"first instance", "1.2.826.0.1.2": b"second instance"}


def _receipt(device: UnlockedDevice, facility: str = "clinic-1") -> dict[str, object]:
    return storage_receipt(facility, BUNDLE, INSTANCES, device.device.center.signing_public)


def _deliver(device: UnlockedDevice, drive: Drive, receipts: Path):  # type: ignore[no-untyped-def]
    return deliver(device, facility_id="clinic-1", receipts_dir=receipts, drive=drive, now=NOW)


def test_storage_receipt_is_delivered_confirmed_and_removed(
    device: UnlockedDevice, drive: Drive, center_keys: CenterKeys, tmp_path: Path
) -> None:
    """The three files reach the clinic, the device signs a confirmation for the center, the
    outbox copy goes, and the listed instances are marked confirmed stored."""
    me = recipient_of(device.age_identity)
    outbox = put_in_outbox(drive.root, "clinic-1", _receipt(device), center_keys.signing_seed, [me])
    result = _deliver(device, drive, tmp_path / "receipts")
    [done] = result.report.delivered
    assert done.document_id == f"storage-{BUNDLE}" and done.confirmed_instances == 2
    assert sorted(p.name for p in (tmp_path / "receipts").iterdir()) == [
        f"storage-{BUNDLE}.html",
        f"storage-{BUNDLE}.json",
        f"storage-{BUNDLE}.json.sig",
    ]
    assert not any(p.exists() for p in outbox)
    confirmation = drive.root / "returns" / "clinic-1" / f"delivery-storage-{BUNDLE}.json"
    body = confirmation.read_bytes()
    assert verify_receipt(
        body, Path(f"{confirmation}.sig").read_bytes(), device.device.signing_public
    )
    doc = json.loads(body)
    assert doc["kind"] == "delivery-confirmation" and doc["device_id"] == device.device.device_id
    assert (
        doc["clinic_path_name"] == f"storage-{BUNDLE}.json" and "/" not in doc["clinic_path_name"]
    )


def test_document_not_signed_by_the_pinned_center_is_refused(
    device: UnlockedDevice, drive: Drive, tmp_path: Path
) -> None:
    """A document signed by any other key is not shown to the clinic and stays on the drive."""
    me = recipient_of(device.age_identity)
    forged = put_in_outbox(drive.root, "clinic-1", _receipt(device), generate_signing_seed(), [me])
    result = _deliver(device, drive, tmp_path / "receipts")
    [refused] = result.report.refused
    assert "signature" in refused.reason
    assert not (tmp_path / "receipts").exists() and all(p.exists() for p in forged)
    assert not (drive.root / "returns").exists()


def test_document_for_another_clinic_is_refused(
    device: UnlockedDevice, drive: Drive, center_keys: CenterKeys, tmp_path: Path
) -> None:
    """A genuine document addressed to another facility, found in this one's outbox, is refused."""
    me = recipient_of(device.age_identity)
    put_in_outbox(
        drive.root, "clinic-1", _receipt(device, "clinic-2"), center_keys.signing_seed, [me]
    )
    [refused] = _deliver(device, drive, tmp_path / "receipts").report.refused
    assert "clinic-2" in refused.reason


def test_incomplete_and_foreign_documents_wait(
    device: UnlockedDevice, drive: Drive, center_keys: CenterKeys, tmp_path: Path
) -> None:
    """A document missing a file, or encrypted to other couriers only, is left with a reason."""
    me, other = recipient_of(device.age_identity), generate_age_keypair().recipient
    files = put_in_outbox(drive.root, "clinic-1", _receipt(device), center_keys.signing_seed, [me])
    files[2].unlink()
    doc = storage_receipt(
        "clinic-1", "20261121T100000Z-0000abce", INSTANCES, device.device.center.signing_public
    )
    put_in_outbox(drive.root, "clinic-1", doc, center_keys.signing_seed, [other])
    left = {d.document_id: d for d in _deliver(device, drive, tmp_path / "r").report.left}
    assert "incomplete" in left[f"storage-{BUNDLE}"].reason
    assert "another courier" in left["storage-20261121T100000Z-0000abce"].reason
    assert not any(d.refused for d in left.values())


def test_interrupted_delivery_completes_the_next_time(
    device: UnlockedDevice, drive: Drive, center_keys: CenterKeys, tmp_path: Path
) -> None:
    """If the outbox copy survived a crash after the clinic got the files, delivering again
    completes (same files, a confirmation) without harm."""
    me = recipient_of(device.age_identity)
    files = put_in_outbox(drive.root, "clinic-1", _receipt(device), center_keys.signing_seed, [me])
    saved = {p: p.read_bytes() for p in files}
    _deliver(device, drive, tmp_path / "receipts")
    for path, data in saved.items():
        path.write_bytes(data)
    [again] = _deliver(device, drive, tmp_path / "receipts").report.delivered
    assert again.confirmed_instances == 0  # already confirmed the first time
    assert not any(p.exists() for p in files)


def test_no_receipts_folder_leaves_documents_waiting(
    device: UnlockedDevice, drive: Drive, center_keys: CenterKeys
) -> None:
    """Without a clinic folder nothing is delivered or confirmed."""
    me = recipient_of(device.age_identity)
    put_in_outbox(drive.root, "clinic-1", _receipt(device), center_keys.signing_seed, [me])
    result = deliver(device, facility_id="clinic-1", receipts_dir=None, drive=drive, now=NOW)
    assert [d.reason for d in result.report.left] == ["no receipts folder for this clinic"]


@pytest.mark.parametrize("flip", [".json.sig", ".json"])
def test_altered_document_is_refused(
    device: UnlockedDevice, drive: Drive, center_keys: CenterKeys, tmp_path: Path, flip: str
) -> None:
    """A document whose JSON or signature was changed after signing is refused."""
    from common.crypto import decrypt_bytes, encrypt_bytes

    me = recipient_of(device.age_identity)
    files = put_in_outbox(drive.root, "clinic-1", _receipt(device), center_keys.signing_seed, [me])
    target = next(p for p in files if p.name.endswith(f"{flip}.age"))
    plain = decrypt_bytes(target.read_bytes(), device.age_identity)
    changed = plain.replace(b"2036", b"2099") if flip == ".json" else b"AAAA" + plain[4:]
    target.write_bytes(encrypt_bytes(changed, [me]))
    assert _deliver(device, drive, tmp_path / "receipts").report.refused
