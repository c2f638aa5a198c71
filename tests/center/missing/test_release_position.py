"""A release that names its bundle's log position resolves that position at the center."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from center.cli.app import app
from center.core.archive import Archive, CenterKeys
from center.core.catalog import MIGRATIONS
from center.core.missing import missing_bundles
from common.sqlitedb import migrate
from tests.center.missing.conftest import Visits
from tests.center.missing.test_cli import _env
from tests.conftest import NOW


def test_a_released_position_is_not_missing(
    released_later: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """Importing drive B (bundles 2 and 3) lists nothing missing once bundle 1 is released."""
    released_later.import_(archive, center_keys, released_later.second)
    assert missing_bundles(archive.conn, operator="Tester", now=NOW).missing == []


def test_the_released_position_is_listed_among_the_releases(
    released_later: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """Bundle 1 is listed as released at its log position, with the release's date."""
    released_later.import_(archive, center_keys, released_later.second)
    [release] = missing_bundles(archive.conn, operator="Tester", now=NOW).released
    assert (release.bundle_id, release.log_seq, release.imported, release.released_at) == (
        released_later.bundle1,
        released_later.bundle1_seq,
        False,
        NOW.isoformat(timespec="seconds"),
    )


def test_a_release_whose_hash_differs_does_not_resolve_the_position(
    released_later: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """A release naming the position with another hash than the center recorded leaves the
    position listed, as a release it may be."""
    released_later.import_(archive, center_keys, released_later.second)
    archive.conn.execute("UPDATE courier_releases SET released_hash = 'ab' || released_hash")
    report = missing_bundles(archive.conn, operator="Tester", now=NOW)
    assert [(m.log_seq, m.maybe_released) for m in report.missing] == [
        (released_later.bundle1_seq, [released_later.bundle1])
    ]
    assert report.released[0].log_seq is None


def test_a_release_without_a_position_keeps_the_position_listed(
    released_later: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """A release from a courier that did not name the position (the older entry shape) leaves
    the position listed as maybe released."""
    released_later.import_(archive, center_keys, released_later.second)
    archive.conn.execute("UPDATE courier_releases SET released_seq = NULL, released_hash = NULL")
    [row] = missing_bundles(archive.conn, operator="Tester", now=NOW).missing
    assert (row.log_seq, row.maybe_released) == (
        released_later.bundle1_seq,
        [released_later.bundle1],
    )


def test_the_upgrade_migration_reads_the_position_from_the_receptions(
    released_later: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """An archive that imported the release before the position was recorded learns it on
    upgrade from the reception logs it kept."""
    released_later.import_(archive, center_keys, released_later.second)
    archive.conn.executescript(
        "DROP TABLE courier_bundles; DROP TABLE courier_releases; "
        "DELETE FROM _migrations WHERE name LIKE 'missing-%'"
    )
    migrate(archive.conn, MIGRATIONS, name="center catalog")
    report = missing_bundles(archive.conn, operator="Tester", now=NOW)
    assert report.missing == []
    assert json.loads(json.dumps(report.to_dict()))["released"][0]["log_seq"] == (
        released_later.bundle1_seq
    )


def test_the_table_names_the_position_the_release_resolved(
    released_later: Visits, archive: Archive, center_keys: CenterKeys, archive_root: Path
) -> None:
    """`center bundles missing` says no bundle is missing and names the released position."""
    released_later.import_(archive, center_keys, released_later.second)
    result = CliRunner().invoke(app, ["bundles", "missing"], env=_env(archive_root))
    assert result.exit_code == 0, result.output
    assert "No missing bundle." in result.output
    assert f"{released_later.bundle1} (log position {released_later.bundle1_seq})" in (
        result.output
    )
