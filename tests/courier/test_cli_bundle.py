"""`courier bundle list` and `courier bundle release` through typer's CliRunner."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from typer.testing import CliRunner, Result

from common.errors import BundleNotInJournal, NothingToRelease
from courier.cli import app as app_module
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.journal import Journal
from courier.core.pull import pull
from tests.conftest import COURIER_PASS, NOW, Terminal
from tests.courier.conftest import a_instances, settings
from tests.courier.test_no_leaks import _needles


@pytest.fixture
def run(device: UnlockedDevice):  # type: ignore[no-untyped-def]
    """Invoke `courier ...` with the test device's home and passphrase."""
    env = {
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "COURIER_HOME": str(device.device.home.root),
        "COURIER_PASSPHRASE": COURIER_PASS,
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
    }

    def invoke(*args: str, code: int = 0, stdin: str | None = None) -> Result:
        result = CliRunner().invoke(app_module.app, list(args), env=env, input=stdin)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def pulled(device: UnlockedDevice, drive: Drive, terminal: Terminal) -> str:
    """The id of a bundle just pulled from the terminal."""
    result = pull(device, settings=settings(terminal.root), drive=drive, now=NOW)
    assert result.bundle_id is not None
    return result.bundle_id


def test_release_json_says_what_was_released(run, pulled: str, terminal: Terminal) -> None:  # type: ignore[no-untyped-def]
    """`bundle release --yes --json` gives the counts released and the record."""
    out = json.loads(run("bundle", "release", pulled, "--reason", "lost", "--yes", "--json").stdout)
    a_studies = terminal.manifest.a_studies
    assert out["released_instances"] == sum(len(s.instances) for s in a_studies)
    assert out["released_studies"] == len(a_studies)
    assert out["record"]["reason"] == "lost" and out["bundle"]["bundle_id"] == pulled


def test_release_asks_first_and_no_keeps_everything(run, pulled: str) -> None:  # type: ignore[no-untyped-def]
    """Without --yes the plan is shown and answering no releases nothing (exit 1)."""
    result = run("bundle", "release", pulled, "--reason", "lost", stdin="n\n", code=1)
    assert "carry again" in result.stdout and "Nothing was released" in result.stdout
    [listed] = json.loads(run("bundle", "list", "--json").stdout)
    assert listed["released"] == 0


def test_release_asks_first_and_yes_releases(run, pulled: str) -> None:  # type: ignore[no-untyped-def]
    """Without --yes, answering yes releases the bundle."""
    result = run("bundle", "release", pulled, "--reason", "lost", stdin="y\n")
    assert "Released" in result.stdout
    [listed] = json.loads(run("bundle", "list", "--json").stdout)
    assert listed["released"] == listed["instances"] and listed["released_by_operator"]


def test_second_release_says_nothing_more(run, pulled: str) -> None:  # type: ignore[no-untyped-def]
    """A second release exits 0 and says there is nothing more to release."""
    run("bundle", "release", pulled, "--reason", "lost", "--yes")
    assert "Nothing more to release" in run("bundle", "release", pulled, "--reason", "x").stdout


def test_unknown_bundle_is_a_clear_error(run) -> None:  # type: ignore[no-untyped-def]
    """An id the journal does not know exits with bundle-not-in-journal and the fix."""
    result = run(
        "bundle", "release", "nope", "--reason", "lost", "--yes", code=BundleNotInJournal.exit_code
    )
    assert "bundle-not-in-journal" in result.output and "courier bundle list" in result.output


def test_confirmed_bundle_is_a_clear_error(
    run, device: UnlockedDevice, pulled: str, terminal: Terminal
) -> None:  # type: ignore[no-untyped-def]
    """A bundle the center confirmed entirely exits with nothing-to-release."""
    with Journal.open(device) as journal:
        pairs = [
            (journal.uid_key("sop", uid), hashlib.sha256(data).hexdigest())
            for uid, data in a_instances(terminal).items()
        ]
        journal.confirm(pairs, "storage-x", NOW.isoformat())
    result = run(
        "bundle", "release", pulled, "--reason", "x", "--yes", code=NothingToRelease.exit_code
    )
    assert "nothing-to-release" in result.output


def test_log_shows_the_release(run, pulled: str) -> None:  # type: ignore[no-untyped-def]
    """`courier log` lists the release with its reason, and `--json` gives it too."""
    run("bundle", "release", pulled, "--reason", "drive lost in transit", "--yes")
    assert "drive lost in transit" in run("log").stdout
    [release] = json.loads(run("log", "--json").stdout)["releases"]
    assert release["bundle_id"] == pulled and release["reason"] == "drive lost in transit"


def test_list_shows_bundles(run, pulled: str, drive: Drive) -> None:  # type: ignore[no-untyped-def]
    """`bundle list` shows each bundle with its facility and drive volume."""
    text = run("bundle", "list").stdout
    assert pulled in text and "clinic-1" in text and drive.volume_id[:8] in text


def test_release_leaks_no_patient_data(
    run, device: UnlockedDevice, pulled: str, terminal: Terminal
) -> None:  # type: ignore[no-untyped-def]
    """The commands' output and the journal rows a release writes hold no name, ID,
    accession, date or UID of the terminal."""
    outputs = [
        run("bundle", "release", pulled, "--reason", "lost", stdin="y\n").output,
        run("bundle", "release", pulled, "--reason", "lost", "--json").output,
        run("bundle", "list").output,
        run("bundle", "list", "--json").output,
        run("log").output,
        run("log", "--json").output,
    ]
    conn = sqlite3.connect(device.device.home.journal)
    rows = [
        repr(row)
        for table in ("bundle_releases", "released", "courier_log", "bundles")
        for row in conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
    ]
    conn.close()
    assert len(rows) > 3
    text = "\n".join(outputs + rows).encode()
    needles = _needles(terminal)
    assert needles and [n for n in needles if n in text] == []


def test_help_of_bundle_commands(run) -> None:  # type: ignore[no-untyped-def]
    """Both commands explain themselves and their options."""
    assert "--reason" in run("bundle", "release", "--help").stdout
    assert "confirmed" in run("bundle", "list", "--help").stdout
