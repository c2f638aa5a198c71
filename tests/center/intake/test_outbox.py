"""The drive outbox (contract C1) and delivery confirmations read back from it (C2)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.devices import active_recipients, enroll, revoke
from center.core.outbox import (
    ALREADY_RECORDED,
    RECORDED,
    REJECTED,
    mark_delivered,
    pending,
    push_outbox,
    queue_document,
)
from center.core.storage_receipts import receipt_id_for
from common.canonical import canonical_json
from common.crypto import decrypt_bytes, sign
from common.errors import DecryptError
from common.receipts import SIGNATURE_CONTEXT, issuer, write_receipt
from common.sqlitedb import transaction
from tests.center.intake.conftest import World, run_import
from tests.center.intake.kit import KitDevice, new_device
from tests.conftest import NOW


def _confirm(
    drive: Path,
    device: KitDevice,
    document_id: str,
    *,
    facility: str = "clinic-1",
    seed: bytes | None = None,
) -> Path:
    """Write a delivery confirmation as the courier does after delivering *document_id*."""
    doc = {
        "kind": "delivery-confirmation",
        "version": 1,
        "document_id": document_id,
        "facility_id": facility,
        "delivered_at": "2026-12-01T10:00:00+00:00",
        "device_id": device.device_id,
        "device_fingerprint": device.fingerprint,
        "clinic_path_name": f"{document_id}.json",
    }
    folder = drive / "returns" / facility
    folder.mkdir(parents=True, exist_ok=True)
    body = canonical_json(doc)
    path = folder / f"delivery-{document_id}.json"
    path.write_bytes(body)
    signature = sign(seed or device.seed, SIGNATURE_CONTEXT + body)
    Path(f"{path}.sig").write_bytes(base64.b64encode(signature) + b"\n")
    return path


@pytest.fixture
def receipt(world: World, archive: Archive, keys: CenterKeys) -> str:
    run_import(archive, keys, world.drive)
    return receipt_id_for(world.bundle.name)


def test_outbox_files_open_with_every_active_device(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """Each outbox file decrypts with the identity of any active device, not a revoked one."""
    second, gone = new_device("Second"), new_device("Gone")
    for device in (second, gone):
        enroll(archive, device.card(), operator="Enroller", now=NOW)
    revoke(archive, gone.device_id, reason="lost", operator="Officer", now=NOW)
    run_import(archive, keys, world.drive)
    sealed = next((world.drive / "outbox" / "clinic-1").glob("*.json.age")).read_bytes()
    for device in (world.device, second):
        assert decrypt_bytes(sealed, device.age.identity).startswith(b"{")
    with pytest.raises(DecryptError):
        decrypt_bytes(sealed, gone.age.identity)
    assert len(active_recipients(archive.conn)) == 2


def test_queue_then_push_writes_a_document_of_another_kind(
    world: World, archive: Archive, keys: CenterKeys, tmp_path: Path
) -> None:
    """Any signed document queued for a facility reaches the drive (expiry notices use this)."""
    document = {
        "kind": "expiry-notice",
        "version": 1,
        "receipt_id": "notice-1",
        "issued": NOW.isoformat(),
        "facility_id": "clinic-7",
        "issuer": issuer("center", "Test Center", archive.card.signing_public),
        "studies": [],
        "totals": {"studies": 0, "instances": 0, "bytes": 0},
    }
    files = write_receipt(tmp_path, document, keys.signing_seed, title="Expiry notice")
    queue_document(
        archive.conn,
        archive.paths,
        document_id="notice-1",
        facility_id="clinic-7",
        kind="expiry-notice",
        now=NOW,
        files=[files.json, files.signature, files.html],
    )
    result = push_outbox(archive, world.drive, active_recipients(archive.conn), NOW)
    assert result.documents == ["notice-1"]
    sealed = world.drive / "outbox" / "clinic-7" / "notice-1.json.age"
    assert decrypt_bytes(sealed.read_bytes(), world.device.age.identity) == files.json.read_bytes()


def test_push_to_the_same_drive_again_writes_nothing(
    world: World, archive: Archive, receipt: str
) -> None:
    """A document this drive already holds for the same devices is not written again."""
    target = world.drive / "outbox" / "clinic-1" / f"{receipt}.json.age"
    before = target.read_bytes()
    result = push_outbox(archive, world.drive, active_recipients(archive.conn), NOW)
    assert (result.documents, result.already) == ([], [receipt])
    assert target.read_bytes() == before


def test_confirmation_records_the_delivery(
    world: World, archive: Archive, keys: CenterKeys, receipt: str
) -> None:
    """A valid confirmation sets delivered_at, is audited, and the document leaves the queue."""
    _confirm(world.drive, world.device, receipt)
    report = run_import(archive, keys, world.drive)
    assert [(c.document_id, c.status) for c in report.confirmations] == [(receipt, RECORDED)]
    delivered, confirmation = archive.conn.execute(
        "SELECT delivered_at, confirmation FROM outbox_documents WHERE document_id = ?", (receipt,)
    ).fetchone()
    assert delivered == "2026-12-01T10:00:00+00:00"
    assert json.loads(confirmation)["device_id"] == world.device.device_id
    assert pending(archive.conn) == []
    row = archive.conn.execute(
        "SELECT action, target FROM audit WHERE action = 'delivery'"
    ).fetchone()
    assert tuple(row) == ("delivery", f"document:{receipt}")


def test_confirmation_seen_again_changes_nothing(
    world: World, archive: Archive, keys: CenterKeys, receipt: str
) -> None:
    """The same confirmation on a later import is reported as already recorded."""
    _confirm(world.drive, world.device, receipt)
    run_import(archive, keys, world.drive)
    again = run_import(archive, keys, world.drive)
    assert [c.status for c in again.confirmations] == [ALREADY_RECORDED]


def test_forged_confirmation_is_a_security_alert(
    world: World, archive: Archive, keys: CenterKeys, receipt: str
) -> None:
    """A confirmation not signed by the device it names is rejected and raises an alert."""
    _confirm(world.drive, world.device, receipt, seed=new_device().seed)
    report = run_import(archive, keys, world.drive)
    assert [c.status for c in report.confirmations] == [REJECTED]
    assert "signature" in report.confirmations[0].reason
    assert pending(archive.conn)[0].document_id == receipt
    alert = archive.conn.execute(
        "SELECT event_code, target FROM audit "
        "WHERE event_code = '110113' AND target LIKE 'delivery:%'"
    ).fetchone()
    assert tuple(alert) == ("110113", f"delivery:{receipt}")


def test_confirmation_of_an_unknown_document_is_rejected(
    world: World, archive: Archive, keys: CenterKeys, receipt: str
) -> None:
    """A validly signed confirmation of a document never queued here is rejected."""
    _confirm(world.drive, world.device, "storage-20000101T000000Z-00000000")
    report = run_import(archive, keys, world.drive)
    assert [c.status for c in report.confirmations] == [REJECTED]
    assert "never queued" in report.confirmations[0].reason


def test_confirmation_from_an_unenrolled_device_is_rejected(
    world: World, archive: Archive, keys: CenterKeys, receipt: str
) -> None:
    """A confirmation signed by a device the center does not know is rejected."""
    _confirm(world.drive, new_device("Stranger"), receipt)
    report = run_import(archive, keys, world.drive)
    assert [c.status for c in report.confirmations] == [REJECTED]
    assert "not an active enrolled device" in report.confirmations[0].reason


def test_drive_with_only_confirmations_is_imported(
    world: World, archive: Archive, keys: CenterKeys, receipt: str, tmp_path: Path
) -> None:
    """A drive holding no bundle but delivery confirmations is read, not refused."""
    empty = tmp_path / "only-returns"
    _confirm(empty, world.device, receipt)
    report = run_import(archive, keys, empty)
    assert report.outcomes == [] and [c.status for c in report.confirmations] == [RECORDED]


def test_mark_delivered_by_hand_is_idempotent(archive: Archive, receipt: str) -> None:
    """Marking a document delivered twice changes it once."""
    with transaction(archive.conn):
        first = mark_delivered(archive.conn, receipt, delivered_at="2026-12-02", confirmation=None)
        second = mark_delivered(archive.conn, receipt, delivered_at="2026-12-03", confirmation=None)
    assert (first, second) == (True, False)
