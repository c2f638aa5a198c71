"""The two CLIs end to end through typer's CliRunner (fixed width, no colour)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from center.cli.app import app as center_app
from common.cards import CenterCard, write_card
from common.crypto import generate_age_keypair, generate_signing_seed, public_key
from courier.cli.app import app as courier_app
from tests.conftest import CENTER_PASS, COURIER_PASS, Terminal


@pytest.fixture
def cli_env(archive_root: Path, tmp_path: Path, center_operator: dict[str, str]) -> dict[str, str]:
    return {
        "COLUMNS": "140",
        "NO_COLOR": "1",
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
        "COURIER_HOME": str(tmp_path / "laptop"),
        "COURIER_PASSPHRASE": COURIER_PASS,
        "CENTER_ARCHIVE": str(archive_root),
        "CENTER_PASSPHRASE": CENTER_PASS,
        **center_operator,
    }


def _ok(app, args: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def enrolled(cli_env: dict[str, str], archive_root: Path) -> dict[str, str]:
    _ok(
        courier_app,
        ["init", "--operator", "Field Op", "--center-card", str(archive_root / "center-card.json")],
        cli_env,
    )
    _ok(
        center_app,
        ["courier", "enroll", str(Path(cli_env["COURIER_HOME"]) / "device-card.json")],
        cli_env,
    )
    return cli_env


def test_visit_and_import_through_the_cli(
    enrolled: dict[str, str], terminal: Terminal, tmp_path: Path
) -> None:
    """init, enroll, pull and import work as commands and report what they did."""
    drive = tmp_path / "drive"
    drive.mkdir()
    pulled = _ok(
        courier_app,
        [
            "pull",
            "clinic-9",
            "--source",
            str(terminal.root),
            "--drive",
            str(drive),
            "--receipts",
            str(tmp_path / "receipts"),
            "--json",
        ],
        enrolled,
    )
    summary = json.loads(pulled.stdout)
    a_instances = sum(len(s.instances) for s in terminal.manifest.a_studies)
    assert summary["instances"] == a_instances
    assert Path(summary["receipt"]).is_file()
    imported = _ok(center_app, ["import", str(drive), "--json"], enrolled)
    doc = json.loads(imported.stdout)
    assert [b["status"] for b in doc["bundles"]] == ["imported"]
    assert len(doc["studies"]) == len(terminal.manifest.a_studies)
    assert all(s["expiry"] for s in doc["studies"])


def test_wrong_passphrase_is_a_clear_refusal(
    enrolled: dict[str, str], terminal: Terminal, tmp_path: Path
) -> None:
    """A wrong device passphrase gives the wrong-passphrase panel and its exit code."""
    drive = tmp_path / "drive"
    drive.mkdir()
    env = {**enrolled, "COURIER_PASSPHRASE": "not it"}
    result = CliRunner().invoke(
        courier_app, ["pull", "c", "--source", str(terminal.root), "--drive", str(drive)], env=env
    )
    assert result.exit_code == 6
    assert "wrong-passphrase" in result.output and "Traceback" not in result.output


def test_center_commands_refuse_without_operator(enrolled: dict[str, str], tmp_path: Path) -> None:
    """A center command touching patient data refuses to run without a named operator."""
    env = {k: v for k, v in enrolled.items() if k != "CENTER_OPERATOR"}
    result = CliRunner().invoke(center_app, ["import", str(tmp_path)], env=env)
    assert result.exit_code == 3 and "operator" in result.output


def test_import_of_an_empty_drive_says_so(enrolled: dict[str, str], tmp_path: Path) -> None:
    """A drive with no bundles gives its own error, not a traceback."""
    result = CliRunner().invoke(center_app, ["import", str(tmp_path)], env=enrolled)
    assert result.exit_code == 27 and "drive-no-bundles" in result.output


def test_pull_from_a_missing_terminal_folder(enrolled: dict[str, str], tmp_path: Path) -> None:
    """A terminal folder that is not there is named in a clear error."""
    drive = tmp_path / "drive"
    drive.mkdir()
    result = CliRunner().invoke(
        courier_app,
        ["pull", "c", "--source", str(tmp_path / "nope"), "--drive", str(drive)],
        env=enrolled,
    )
    assert result.exit_code == 10 and "nope" in result.output


def test_swapped_center_card_is_detected(enrolled: dict[str, str], tmp_path: Path) -> None:
    """Replacing the center card on the laptop with another center's is refused."""
    card = Path(enrolled["COURIER_HOME"]) / "center-card.json"
    seed = generate_signing_seed()
    write_card(
        card,
        CenterCard(
            "Evil",
            generate_age_keypair().recipient,
            generate_age_keypair().recipient,
            public_key(seed),
            "now",
        ),
        seed,
    )
    result = CliRunner().invoke(
        courier_app,
        ["pull", "c", "--source", str(tmp_path), "--drive", str(tmp_path)],
        env=enrolled,
    )
    assert result.exit_code == 7 and "center card" in result.output
