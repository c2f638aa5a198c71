"""The retention, expiry, hold and facility commands through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from center.cli.app import app
from center.core.archive import open_archive
from tests.center.retention.conftest import Clinic
from tests.conftest import CENTER_PASS


@pytest.fixture
def cli(archive_root: Path, center_operator: dict[str, str]) -> dict[str, str]:
    """An archive with two studies of one patient: OLD (2000, long expired) and NEW (2024)."""
    with open_archive(archive_root) as archive:
        clinic = Clinic(archive.conn, archive.store, archive_root)
        clinic.study("1.1", study_date="20000310", accession="OLD")
        clinic.study("1.2", study_date="20240105", accession="NEW")
    return {
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "CENTER_ARCHIVE": str(archive_root),
        "CENTER_PASSPHRASE": CENTER_PASS,
        **center_operator,
    }


def run(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result


def test_presets_are_listed_without_an_archive() -> None:
    """`retention presets` lists every preset with its disclaimer, no archive needed."""
    out = run({"COLUMNS": "200", "NO_COLOR": "1"}, "retention", "presets", "--json").stdout
    assert {p["name"] for p in json.loads(out)} == {"default", "england", "japan", "us-mammography"}


def test_invalid_rules_file_names_line_and_field(tmp_path: Path) -> None:
    """`retention validate` refuses a bad file with exit 50 naming the line and the field."""
    bad = tmp_path / "rules.toml"
    bad.write_text(
        '[ruleset]\nformat = 1\nname = "x"\ntitle = "X"\n[fallback]\n'
        'description = "d"\nperiod = { yeers = 1 }\nanchor = "study-date"\n'
    )
    result = run({"COLUMNS": "200", "NO_COLOR": "1"}, "retention", "validate", str(bad), code=50)
    assert "line 7" in result.output and "period.yeers" in result.output


def test_set_show_explain_and_apply(cli: dict[str, str]) -> None:
    """Installing a preset, showing it, explaining a study and applying work end to end."""
    run(cli, "retention", "set", "--preset", "japan")
    shown = json.loads(run(cli, "retention", "show", "--json").stdout)
    assert shown["name"] == "japan" and shown["installed_by"] == "Cli Tester"
    dry = json.loads(run(cli, "retention", "apply", "--dry-run", "--json").stdout)
    assert {c["accession"]: c["after"] for c in dry["changes"]} == {
        "OLD": "2002-03-10",
        "NEW": "2026-01-05",
    }
    run(cli, "retention", "apply")
    explained = json.loads(run(cli, "retention", "explain", "NEW", "--json").stdout)
    assert explained["stored"]["expiry"] == "2026-01-05"
    winner = [r for r in explained["rules"] if r["winner"]]
    assert [r["rule_id"] for r in winner] == ["x-ray-images"]
    text = run(cli, "retention", "explain", "NEW").stdout
    assert "x-ray-images" in text and "Computed expiry: 2026-01-05" in text


def test_purge_is_a_dry_run_without_yes(cli: dict[str, str]) -> None:
    """`expiry purge` without --yes deletes nothing and says how to proceed."""
    run(cli, "facility", "set", "clinic-1", "--on-expiry", "delete")
    out = run(cli, "expiry", "purge").stdout
    assert "OLD" in out and "--yes" in out
    listed = json.loads(run(cli, "expiry", "list", "--json").stdout)
    assert [(s["accession"], s["status"]) for s in listed] == [("OLD", "due")]


def test_hold_then_release_then_purge(cli: dict[str, str]) -> None:
    """A held study survives purge --yes and shows as held; released, it is deleted."""
    run(cli, "facility", "set", "clinic-1", "--on-expiry", "delete", "--grace-days", "0")
    placed = json.loads(
        run(cli, "hold", "add", "--study", "OLD", "--reason", "case 7", "--json").stdout
    )
    hold_id = str(placed[0]["hold_id"])
    assert "HELD" in run(cli, "expiry", "list").stdout
    gone = json.loads(run(cli, "expiry", "purge", "--yes", "--json").stdout)
    assert gone["deleted"] == [] and gone["not_due"] == {"held": 1}
    run(cli, "hold", "remove", hold_id, "--reason", "case closed")
    gone = json.loads(run(cli, "expiry", "purge", "--yes", "--json").stdout)
    assert [d["accession"] for d in gone["deleted"]] == ["OLD"]
    stones = json.loads(run(cli, "expiry", "tombstones", "--json").stdout)
    assert stones[0]["deleted_by"] == "Cli Tester" and stones[0]["accession"] == "OLD"


def test_notify_and_record_delivery(cli: dict[str, str]) -> None:
    """Under a notify contract: notice issued and queued, delivery recorded by hand."""
    run(cli, "facility", "set", "clinic-1", "--on-expiry", "notify", "--grace-days", "30")
    issued = json.loads(run(cli, "expiry", "notify", "--json").stdout)
    [notice] = issued["notices"]
    assert [s["accession"] for s in notice["studies"]] == ["OLD"]
    assert Path(notice["html"]).is_file()
    listed = json.loads(run(cli, "expiry", "notices", "--json").stdout)
    assert listed[0]["delivered_at"] is None
    run(cli, "expiry", "notice-delivered", notice["notice_id"], "--note", "signed by reception")
    status = json.loads(run(cli, "expiry", "list", "--json").stdout)
    assert status[0]["status"] == "waiting" and status[0]["notice_id"] == notice["notice_id"]


def test_hold_on_a_patient_needs_the_facility(cli: dict[str, str]) -> None:
    """`hold add --patient` without --facility is refused as a configuration error."""
    result = run(cli, "hold", "add", "--patient", "P1", "--reason", "x", code=3)
    assert "--facility" in result.output


def test_unknown_study_is_a_clear_error(cli: dict[str, str]) -> None:
    """Explaining a study that does not exist exits with study-not-found."""
    result = run(cli, "retention", "explain", "NOPE", code=51)
    assert "study-not-found" in result.output
