"""The courier commands through typer's CliRunner (fixed width, no colour)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from center.core.archive import CenterKeys
from common.crypto import generate_signing_seed, recipient_of
from common.errors import DriveNotFound, OutboxDocumentRefused, ReceiptInvalid
from courier.cli import app as app_module
from courier.core.device import CourierHome, UnlockedDevice
from tests.conftest import COURIER_PASS, Terminal
from tests.courier.conftest import put_in_outbox, storage_receipt


class _NoDrives:
    def block_devices(self) -> list[Any]:
        return []

    def mounts(self) -> str:
        return ""


@pytest.fixture
def run(courier_home: CourierHome, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Invoke `courier ...` with this test's home and passphrase; no drive plugged in."""
    monkeypatch.setattr(app_module, "drive_probe", _NoDrives)
    env = {
        "COLUMNS": "160",
        "NO_COLOR": "1",
        "COURIER_HOME": str(courier_home.root),
        "COURIER_PASSPHRASE": COURIER_PASS,
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
    }

    def invoke(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(app_module.app, list(args), env=env)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def configured(run, terminal: Terminal, tmp_path: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """clinic-1 configured with the terminal and a receipts folder; an empty drive folder."""
    paths = {"drive": tmp_path / "drive", "receipts": tmp_path / "receipts"}
    paths["drive"].mkdir()
    run(
        "facility",
        "add",
        "clinic-1",
        "--name",
        "Clinique du Lac",
        "--source",
        str(terminal.root),
        "--receipts",
        str(paths["receipts"]),
    )
    return paths


def test_facility_commands(run, terminal: Terminal) -> None:  # type: ignore[no-untyped-def]
    """add, list, show and remove manage the configured clinics."""
    run(
        "facility",
        "add",
        "c7",
        "--name",
        "Seven",
        "--source",
        str(terminal.root),
        "--rule",
        "StudyID:ARC",
        "--capacity-threshold",
        "15%",
    )
    [listed] = json.loads(run("facility", "list", "--json").stdout)
    assert listed["rule"] == "StudyID:ARC" and listed["capacity_threshold"] == "15%"
    assert "Seven" in run("facility", "show", "c7").stdout
    run("facility", "add", "c7", "--name", "Again", "--source", "/x", code=14)
    run("facility", "remove", "c7")
    assert json.loads(run("facility", "list", "--json").stdout) == []


def test_visit_is_one_short_command(run, configured: dict[str, Path], terminal: Terminal) -> None:  # type: ignore[no-untyped-def]
    """`courier pull ID --drive D` uses the facility's settings and leaves a receipt."""
    out = json.loads(run("pull", "clinic-1", "--drive", str(configured["drive"]), "--json").stdout)
    assert out["instances"] == sum(len(s.instances) for s in terminal.manifest.a_studies)
    assert Path(out["receipt"]).parent == configured["receipts"]
    text = run("pull", "clinic-1", "--drive", str(configured["drive"])).stdout
    assert "Nothing new to carry" in text


def test_pull_without_a_drive_says_so(run, configured: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    """With --drive auto (the default) and no drive plugged in, the error says what to do."""
    result = run("pull", "clinic-1", code=DriveNotFound.exit_code)
    assert "drive-not-found" in result.output and "courier drives" in result.output


def test_unknown_facility_is_a_clear_error(run) -> None:  # type: ignore[no-untyped-def]
    """A facility that is not configured gives facility-unknown with the fix."""
    result = run("scan", "nowhere", code=13)
    assert "facility-unknown" in result.output and "courier facility add" in result.output


def test_scan_shows_what_a_pull_would_take(
    run, configured: dict[str, Path], terminal: Terminal
) -> None:  # type: ignore[no-untyped-def]
    """`courier scan --json` lists the A studies with counts and sizes, copying nothing."""
    out = json.loads(run("scan", "clinic-1", "--json").stdout)
    assert {s["accession"] for s in out["studies"]} == {
        s.accession for s in terminal.manifest.a_studies
    }
    assert out["totals"]["bytes"] > 0 and out["capacity"]["total_bytes"] > 0
    assert not list(configured["drive"].iterdir())
    assert "A pull of clinic-1 would take" in run("scan", "clinic-1").stdout


def test_log_lists_visits(run, configured: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    """`courier log` shows each visit with its counts, capacity and an intact chain."""
    run("pull", "clinic-1", "--drive", str(configured["drive"]))
    run("pull", "clinic-1", "--drive", str(configured["drive"]))
    out = json.loads(run("log", "clinic-1", "--json").stdout)
    assert [bool(v["bundle_id"]) for v in out["visits"]] == [True, False]
    assert out["visits"][0]["capacity"]["free_bytes"] > 0 and out["visits"][0]["operator"]
    assert out["log_chain"] == {"entries": 2, "problems": []}
    assert "hash chain intact" in run("log").stdout


def test_verify_checks_a_drive_without_keys(run, configured: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    """`courier verify` passes a good drive and names the damaged file of a bad one."""
    run("pull", "clinic-1", "--drive", str(configured["drive"]))
    out = json.loads(run("verify", str(configured["drive"]), "--json").stdout)
    assert out["valid"] and out["bundles"][0]["signed_by_this_device"]
    victim = next(configured["drive"].rglob("000001.age"))
    victim.write_bytes(victim.read_bytes()[:-5])
    result = run("verify", str(configured["drive"]), code=24)
    assert "data/s0000/000001.age: truncated" in result.output


def test_receipt_verify(run, configured: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    """A receipt verifies and names its signer; an edited one is refused."""
    out = json.loads(run("pull", "clinic-1", "--drive", str(configured["drive"]), "--json").stdout)
    html = Path(out["receipt"])
    assert "this courier device" in run("receipt", "verify", str(html)).stdout
    doc = html.with_suffix(".json")
    doc.write_bytes(doc.read_bytes().replace(b'"studies"', b'"studies" '))
    result = run("receipt", "verify", str(doc), code=ReceiptInvalid.exit_code)
    assert "receipt-invalid" in result.output


def test_deliver_refuses_forged_documents(
    run,
    configured: dict[str, Path],
    device: UnlockedDevice,
    center_keys: CenterKeys,  # type: ignore[no-untyped-def]
) -> None:
    """`courier deliver` delivers genuine documents and exits with an error for forged ones."""
    me = recipient_of(device.age_identity)
    good = storage_receipt(
        "clinic-1", "20261120T100000Z-0000abcd", {}, device.device.center.signing_public
    )
    bad = storage_receipt(
        "clinic-1", "20261120T100000Z-0000abce", {}, device.device.center.signing_public
    )
    put_in_outbox(configured["drive"], "clinic-1", good, center_keys.signing_seed, [me])
    put_in_outbox(configured["drive"], "clinic-1", bad, generate_signing_seed(), [me])
    (configured["drive"] / ".courier-volume").write_text(
        "courier-volume 00112233445566778899aabbccddeeff\n"
    )
    result = run(
        "deliver",
        "clinic-1",
        "--drive",
        str(configured["drive"]),
        code=OutboxDocumentRefused.exit_code,
    )
    assert "Delivered storage-receipt storage-20261120T100000Z-0000abcd" in result.output
    assert "REFUSED storage-20261120T100000Z-0000abce" in result.output
