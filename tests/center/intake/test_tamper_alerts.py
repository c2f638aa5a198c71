"""Tampering the center's own checks detect is recorded as one security alert (110113) each."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from center.cli.app import app
from center.core import audit
from center.core.archive import Archive, CenterKeys
from center.core.auditverify import AuditVerifyReport, verify_log
from center.core.check import check_archive
from center.core.receiptcheck import verify_receipt_file
from center.core.storage_receipts import issued_checkpoints, receipt_id_for
from common.canonical import canonical_json
from common.crypto import generate_signing_seed, public_key
from common.receipts import issuer, receipt_bytes
from tests.center.intake.conftest import World, run_import
from tests.conftest import CENTER_PASS, NOW, add_test_operator

OPERATOR = "Verifier"


@pytest.fixture
def imported(world: World, archive: Archive, keys: CenterKeys) -> str:
    """The receipt id of the world's bundle, imported."""
    run_import(archive, keys, world.drive)
    return receipt_id_for(world.bundle.name)


def _alerts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM audit WHERE event_code = ? ORDER BY seq", (audit.EVENT_SECURITY_ALERT,)
    ).fetchall()
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]


def _new_alerts(conn: sqlite3.Connection, before: int) -> list[dict[str, Any]]:
    return _alerts(conn)[before:]


def _copy(archive: Archive, receipt_id: str, into: Path, name: str | None = None) -> Path:
    """The receipt's .json and .json.sig copied into *into* (as *name*.json if given)."""
    folder = archive.paths.receipts / "clinic-1"
    stem = name or receipt_id
    for suffix in (".json", ".json.sig"):
        shutil.copy(folder / f"{receipt_id}{suffix}", into / f"{stem}{suffix}")
    return into / f"{stem}.json"


def _edit(path: Path, change: Any) -> None:
    doc = json.loads(path.read_bytes())
    change(doc)
    path.write_bytes(canonical_json(doc))


def _drop_a_study(doc: dict[str, Any]) -> None:
    doc["studies"] = doc["studies"][1:]


def _verify_receipt(archive: Archive, ref: str) -> list[dict[str, Any]]:
    before = len(_alerts(archive.conn))
    verify_receipt_file(archive, ref, operator=OPERATOR, now=NOW)
    return _new_alerts(archive.conn, before)


def test_altered_study_list_writes_one_receipt_alert(
    archive: Archive, imported: str, tmp_path: Path
) -> None:
    """A receipt whose study list was edited gives one alert naming the receipt and checks."""
    path = _copy(archive, imported, tmp_path)
    _edit(path, _drop_a_study)
    [alert] = _verify_receipt(archive, str(path))
    assert (alert["operator"], alert["action"], alert["target"], alert["outcome"]) == (
        OPERATOR,
        "receipt",
        f"receipt:{imported}",
        audit.OUTCOME_FINDINGS,
    )
    assert alert["details"]["check"] == "receipt-verification"
    assert alert["details"]["failed"] == ["center-copy", "signature"]


def test_receipt_signed_by_another_center_writes_one_alert(
    archive: Archive, imported: str, tmp_path: Path
) -> None:
    """A receipt validly signed by another center's key is an alert on its signature."""
    path = _copy(archive, imported, tmp_path)
    doc = json.loads(path.read_bytes())
    seed = generate_signing_seed()
    doc["issuer"] = issuer("center", "Elsewhere", public_key(seed))
    for suffix, data in receipt_bytes(doc, seed, title="Storage receipt").items():
        Path(f"{tmp_path / imported}{suffix}").write_bytes(data)
    [alert] = _verify_receipt(archive, str(path))
    assert "signature" in alert["details"]["failed"]


def test_rewritten_log_seen_by_a_receipt_writes_one_alert(archive: Archive, imported: str) -> None:
    """A receipt whose checkpoint the log no longer holds gives an alert on that check."""
    receipt = archive.paths.receipts / "clinic-1" / f"{imported}.json"
    seq = json.loads(receipt.read_text())["audit_checkpoint"]["seq"]
    archive.conn.execute("UPDATE audit SET hash = ? WHERE seq = ?", ("00" * 32, seq))
    [alert] = _verify_receipt(archive, imported)
    assert alert["details"]["failed"] == ["audit-checkpoint"]


def test_clean_receipt_verification_writes_no_alert(archive: Archive, imported: str) -> None:
    """Verifying the center's untouched copy records no security alert."""
    assert _verify_receipt(archive, imported) == []


def test_instances_no_longer_stored_are_not_an_alert(archive: Archive, imported: str) -> None:
    """A receipt listing an object gone from the store (as after a purge) raises no alert."""
    sha = next(iter(archive.store))
    archive.store.path(sha).chmod(0o644)
    archive.store.path(sha).unlink()
    assert _verify_receipt(archive, imported) == []


def test_receipt_alert_names_no_patient_data(
    archive: Archive, imported: str, tmp_path: Path
) -> None:
    """A copy named after a patient, with a made-up receipt id, is named by a hashed label."""
    patient_id, name = archive.conn.execute(
        "SELECT patient_id, patient_name FROM patients LIMIT 1"
    ).fetchone()
    accession = archive.conn.execute("SELECT accession FROM studies LIMIT 1").fetchone()[0]
    path = _copy(archive, imported, tmp_path, name=f"{patient_id} {name}")
    _edit(path, lambda doc: doc.update(receipt_id=f"storage-{accession}"))
    [alert] = _verify_receipt(archive, str(path))
    text = json.dumps(alert)
    assert alert["target"].startswith("receipt-file:")
    assert not [v for v in (patient_id, str(name), accession) if v and v in text]


def _verify_log(archive: Archive) -> AuditVerifyReport:
    return verify_log(
        archive.conn,
        archive.card.signing_public,
        operator=OPERATOR,
        now=NOW,
        extra_checkpoints=issued_checkpoints(archive.conn),
    )


def _edit_entry(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute("UPDATE audit SET operator = 'mallory' WHERE seq = ?", (seq,))


def _rechain(conn: sqlite3.Connection) -> None:
    """Recompute every hash, as an intruder covering an edit would."""
    prev = audit.GENESIS.hex()
    for row in conn.execute("SELECT * FROM audit ORDER BY seq").fetchall():
        digest = audit.chain_hash(prev, audit.row_entry(row).content())
        conn.execute(
            "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, row["seq"])
        )
        prev = digest


def test_rewritten_entry_writes_one_audit_chain_alert(archive: Archive, imported: str) -> None:
    """`audit verify` on an edited entry records one alert naming the entry's seq."""
    _edit_entry(archive.conn, 2)
    before = len(_alerts(archive.conn))
    _verify_log(archive)
    [alert] = _new_alerts(archive.conn, before)
    assert (alert["operator"], alert["action"], alert["target"]) == (OPERATOR, "audit", "audit-log")
    assert alert["details"]["check"] == "audit-chain"
    assert alert["details"]["entries"] == [{"seq": 2, "kind": "edited"}]


def test_recomputed_chain_writes_one_audit_checkpoint_alert(
    archive: Archive, imported: str
) -> None:
    """An edit hidden by recomputing the chain is an alert of the audit-checkpoint check."""
    _edit_entry(archive.conn, 2)
    _rechain(archive.conn)
    before = len(_alerts(archive.conn))
    _verify_log(archive)
    [alert] = _new_alerts(archive.conn, before)
    assert alert["details"]["check"] == "audit-checkpoint"
    assert alert["details"]["kinds"] == ["checkpoint"]


def test_clean_audit_verify_writes_no_alert(archive: Archive, imported: str) -> None:
    """Verifying an untouched log records no security alert."""
    before = len(_alerts(archive.conn))
    assert _verify_log(archive).ok
    assert _new_alerts(archive.conn, before) == []


def test_audit_verify_still_fails_after_the_alert(archive: Archive, imported: str) -> None:
    """The alert chains onto the broken log without repairing it: the edit is named again."""
    _edit_entry(archive.conn, 2)
    first = [(p.seq, p.kind) for p in _verify_log(archive).problems]
    second = [(p.seq, p.kind) for p in _verify_log(archive).problems]
    assert first == second == [(2, "edited")]


def test_recomputed_chain_still_fails_after_the_alert(archive: Archive, imported: str) -> None:
    """After the alert, the recomputed history still contradicts the signed checkpoint."""
    _edit_entry(archive.conn, 2)
    _rechain(archive.conn)
    first = [(p.seq, p.kind) for p in _verify_log(archive).problems]
    second = [(p.seq, p.kind) for p in _verify_log(archive).problems]
    assert first == second and {kind for _, kind in first} == {"checkpoint"}


def _check(archive: Archive, **kwargs: Any) -> list[dict[str, Any]]:
    before = len(_alerts(archive.conn))
    check_archive(archive, operator=OPERATOR, now=NOW, **kwargs)
    return _new_alerts(archive.conn, before)


def test_check_finding_a_rewritten_entry_writes_one_alert(archive: Archive, imported: str) -> None:
    """`center check` on an edited entry records one alert of the archive-check check."""
    _edit_entry(archive.conn, 2)
    [alert] = _check(archive)
    assert (alert["action"], alert["details"]["check"]) == ("check", "archive-check")
    assert alert["details"]["entries"] == [{"seq": 2, "kind": "edited"}]


def test_clean_check_writes_no_alert(archive: Archive, imported: str) -> None:
    """A sound archive, even fully re-read, records no security alert."""
    assert _check(archive, read_data=True) == []


def test_corrupt_object_is_a_finding_not_an_alert(archive: Archive, imported: str) -> None:
    """An object that no longer has its sha256 (bit rot looks the same) raises no alert."""
    sha = sorted(archive.store)[0]
    path = archive.store.path(sha)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert _check(archive, read_data=True) == []


def test_cli_alert_is_committed_before_the_error(
    world: World, archive: Archive, imported: str
) -> None:
    """`center audit verify` still exits 43, and its alert is in the catalog afterwards."""
    _edit_entry(archive.conn, 2)
    env = {
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "CENTER_ARCHIVE": str(world.archive_root),
        "CENTER_PASSPHRASE": CENTER_PASS,
        **add_test_operator(world.archive_root, "Cli Verifier"),
    }
    before = len(_alerts(archive.conn))
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 43 and "audit-chain-broken" in result.output
    fresh = sqlite3.connect(world.archive_root / "catalog.sqlite")
    fresh.row_factory = sqlite3.Row
    try:
        [alert] = _new_alerts(fresh, before)
    finally:
        fresh.close()
    assert alert["operator"] == "Cli Verifier"
