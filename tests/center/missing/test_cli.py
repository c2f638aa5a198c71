"""`center bundles missing` through typer's CliRunner: table, --json, exit code."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from center.cli.app import app
from center.core.archive import Archive, CenterKeys
from tests.center.missing.conftest import Visits
from tests.conftest import CENTER_PASS, add_test_operator


def _env(archive_root: Path) -> dict[str, str]:
    """Variables that log in as an importer (the role that handles drives)."""
    add_test_operator(archive_root, "Missing Admin")
    return {
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
        "CENTER_ARCHIVE": str(archive_root),
        "CENTER_PASSPHRASE": CENTER_PASS,
        **add_test_operator(archive_root, "Missing Tester", role="importer"),
    }


def test_json_lists_the_missing_bundle_and_exits_zero(
    visits: Visits, archive: Archive, center_keys: CenterKeys, archive_root: Path
) -> None:
    """--json gives the missing bundle with its log position, and the command exits 0."""
    visits.import_(archive, center_keys, visits.second)
    result = CliRunner().invoke(app, ["bundles", "missing", "--json"], env=_env(archive_root))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [m["log_seq"] for m in data["missing"]] == [visits.bundle1_seq]


def test_nothing_missing_says_so(archive_root: Path) -> None:
    """An archive with nothing missing prints that no bundle is missing."""
    result = CliRunner().invoke(app, ["bundles", "missing"], env=_env(archive_root))
    assert result.exit_code == 0 and "No missing bundle." in result.output


def test_import_says_when_an_earlier_bundle_has_not_arrived(
    visits: Visits, archive_root: Path
) -> None:
    """`center import` of drive B ends with one line pointing to `center bundles missing`."""
    args = ["import", str(visits.second.root)]
    result = CliRunner().invoke(app, args, env=_env(archive_root))
    assert result.exit_code == 0, result.output
    assert "1 bundle(s) the couriers sealed have not arrived" in result.output
