"""The intake commands through typer's CliRunner: output, --json, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from center.cli.app import app
from common.bundle import format as fmt
from tests.center.intake.conftest import OBJECTS, World
from tests.center.intake.kit import new_device, write_bundle
from tests.conftest import CENTER_PASS, add_test_operator


@pytest.fixture
def env(world: World) -> dict[str, str]:
    return {
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
        "CENTER_ARCHIVE": str(world.archive_root),
        "CENTER_PASSPHRASE": CENTER_PASS,
        **add_test_operator(world.archive_root, "Intake Tester"),
    }


def _run(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert "Traceback" not in result.output
    return result


def _ok(env: dict[str, str], *args: str) -> Result:
    result = _run(env, *args)
    assert result.exit_code == 0, result.output
    return result


def test_import_prints_a_summary_per_bundle(world: World, env: dict[str, str]) -> None:
    """The table names the bundle and its outcome, and where the receipt is."""
    out = _ok(env, "import", str(world.drive)).output
    assert world.bundle.name in out and "imported" in out
    assert "Storage receipt:" in out and "outbox" in out


def test_import_json_is_machine_readable(world: World, env: dict[str, str]) -> None:
    """--json gives each bundle's outcome, the studies and the outbox files."""
    doc = json.loads(_ok(env, "import", str(world.drive), "--json").stdout)
    [bundle] = doc["bundles"]
    assert (bundle["status"], bundle["stored"], bundle["quarantined"]) == ("imported", OBJECTS, 0)
    assert doc["studies"] and all(s["expiry"] for s in doc["studies"])
    assert len(doc["outbox"]["files"]) == 3 and doc["outbox_error"] is None


def test_refused_bundle_exits_with_its_error(world: World, env: dict[str, str]) -> None:
    """A single refused bundle exits with its error's code and panel (device-unknown: 30)."""
    world.bundle.rename(world.root / "set-aside")
    write_bundle(world.drive, new_device("Stranger"), world.recipients, world.files[:1])
    result = _run(env, "import", str(world.drive))
    assert result.exit_code == 30 and "device-unknown" in result.output


def test_partial_import_exits_with_its_own_code(world: World, env: dict[str, str]) -> None:
    """A partially imported bundle gives exit 41 after the summary."""
    (world.bundle / fmt.object_relpath(1)).unlink()
    result = _run(env, "import", str(world.drive))
    assert result.exit_code == 41 and "bundle-partially-imported" in result.output
    assert "partial" in result.output


def test_import_without_an_operator_is_refused(world: World, env: dict[str, str]) -> None:
    """No operator, no import: the command refuses before touching anything."""
    env = {k: v for k, v in env.items() if not k.startswith("CENTER_OPERATOR")}
    result = _run(env, "import", str(world.drive))
    assert result.exit_code == 3 and "operator" in result.output


def test_revoke_then_list(world: World, env: dict[str, str]) -> None:
    """courier revoke marks the device; courier list --json shows who revoked it and why."""
    _ok(env, "courier", "revoke", world.device.device_id, "--reason", "laptop lost")
    [device] = json.loads(_ok(env, "courier", "list", "--json").stdout)
    assert (device["status"], device["revoked_by"], device["revoke_reason"]) == (
        "revoked",
        "Intake Tester",
        "laptop lost",
    )


def test_receipt_show_and_verify(world: World, env: dict[str, str]) -> None:
    """receipt show prints the studies; receipt verify --json passes every check."""
    _ok(env, "import", str(world.drive))
    receipt = f"storage-{world.bundle.name}"
    assert "Kept until" in _ok(env, "receipt", "show", receipt).output
    doc = json.loads(_ok(env, "receipt", "verify", receipt, "--json").stdout)
    assert doc["ok"] and len(doc["checks"]) == 5


def test_receipt_verify_fails_on_an_altered_copy(
    world: World, env: dict[str, str], tmp_path: Path
) -> None:
    """An edited receipt exits with receipt-invalid and names the failed checks."""
    _ok(env, "import", str(world.drive))
    folder = world.archive_root / "receipts" / "clinic-1"
    name = f"storage-{world.bundle.name}.json"
    (tmp_path / name).write_bytes((folder / name).read_bytes().replace(b"clinic-1", b"clinic-2"))
    (tmp_path / f"{name}.sig").write_bytes((folder / f"{name}.sig").read_bytes())
    result = _run(env, "receipt", "verify", str(tmp_path / name))
    assert result.exit_code == 42 and "signature" in result.output


def test_audit_show_filters_and_verify_passes(world: World, env: dict[str, str]) -> None:
    """audit show --action import --json lists the import; audit verify exits 0."""
    _ok(env, "import", str(world.drive))
    entries = json.loads(_ok(env, "audit", "show", "--action", "import", "--json").stdout)
    assert [e["target"] for e in entries] == [f"bundle:{world.bundle.name}"]
    assert entries[0]["operator"] == "Intake Tester"
    assert "problem" not in _ok(env, "audit", "verify").output


def test_audit_verify_names_a_tampered_entry(world: World, env: dict[str, str]) -> None:
    """An edited entry makes audit verify exit with audit-chain-broken, naming the entry."""
    import sqlite3

    _ok(env, "import", str(world.drive))
    conn = sqlite3.connect(world.archive_root / "catalog.sqlite")
    conn.execute("UPDATE audit SET operator = 'mallory' WHERE seq = 2")
    conn.commit()
    conn.close()
    result = _run(env, "audit", "verify")
    assert result.exit_code == 43 and "entry 2: edited" in result.output


def test_audit_show_refuses_a_bad_date(env: dict[str, str]) -> None:
    """--since that is not a date is a configuration error naming the option."""
    result = _run(env, "audit", "show", "--since", "yesterday")
    assert result.exit_code == 3 and "--since" in result.output


def test_check_exits_non_zero_on_a_finding(world: World, env: dict[str, str]) -> None:
    """check exits 0 on a sound archive and 44 once an object is missing."""
    _ok(env, "import", str(world.drive))
    assert "No findings" in _ok(env, "check", "--read-data").output
    victim = next((world.archive_root / "objects").rglob("*"))
    while victim.is_dir():
        victim = next(victim.iterdir())
    victim.chmod(0o644)
    victim.unlink()
    result = _run(env, "check", "--json")
    assert result.exit_code == 44
    assert json.loads(result.stdout)["findings"][0]["kind"] == "missing-object"


def test_check_options_exclude_each_other(env: dict[str, str]) -> None:
    """--read-data with --subset is refused as a usage error of the configuration kind."""
    result = _run(env, "check", "--read-data", "--subset", "1/7")
    assert result.exit_code == 3
