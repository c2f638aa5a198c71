"""`center bundles missing`: bundles the courier logs name that never reached the center."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from center.core.archive import Archive, CenterKeys
from center.core.catalog import MIGRATIONS
from center.core.missing import missing_bundles
from common.sqlitedb import migrate
from courier.core.device import UnlockedDevice
from tests.center.missing.conftest import Visits
from tests.conftest import NOW


def _missing(archive: Archive, days: int = 0, older_than: int | None = None) -> list[tuple]:
    report = missing_bundles(
        archive.conn, operator="Tester", now=NOW + timedelta(days=days), older_than=older_than
    )
    return [(m.device_id, m.log_seq, m.bundle_id, m.age_days) for m in report.missing]


def test_a_bundle_sealed_before_the_imported_one_is_listed_missing(
    visits: Visits, archive: Archive, center_keys: CenterKeys, device: UnlockedDevice
) -> None:
    """Importing only bundle 2 lists bundle 1's log position as a missing bundle of the device."""
    visits.import_(archive, center_keys, visits.second)
    assert _missing(archive, days=3) == [(device.device.device_id, visits.bundle1_seq, None, 3)]


def test_the_missing_bundle_is_no_longer_listed_once_imported(
    visits: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """After drive A is imported too, nothing is missing."""
    visits.import_(archive, center_keys, visits.second)
    visits.import_(archive, center_keys, visits.first)
    assert _missing(archive) == []


def test_the_imported_bundle_names_the_missing_position(
    visits: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """Once bundle 1 arrives its visit entry names the position the center knew by hash only."""
    visits.import_(archive, center_keys, visits.second)
    visits.import_(archive, center_keys, visits.first)
    row = archive.conn.execute(
        "SELECT bundle_id, instances FROM courier_bundles WHERE log_seq = ?",
        (visits.bundle1_seq,),
    ).fetchone()
    assert row[0] == visits.bundle1 and row[1] > 0


def test_a_first_bundle_has_no_earlier_ones(
    visits: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """Importing a device's first bundle alone lists nothing missing."""
    visits.import_(archive, center_keys, visits.first)
    assert _missing(archive) == []


def test_older_than_leaves_out_recent_bundles(
    visits: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """--older-than DAYS lists only bundles sealed more than DAYS days ago."""
    visits.import_(archive, center_keys, visits.second)
    assert _missing(archive, days=3, older_than=3) == []
    assert len(_missing(archive, days=4, older_than=3)) == 1


def test_a_released_bundle_is_listed_as_released_not_by_id_as_missing(
    released_visits: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """A bundle the courier released that never arrives is listed among the releases."""
    released_visits.import_(archive, center_keys, released_visits.second)
    report = missing_bundles(archive.conn, operator="Tester", now=NOW)
    assert [(r.bundle_id, r.imported) for r in report.released] == [
        (released_visits.bundle1, False)
    ]
    assert released_visits.bundle1 not in {m.bundle_id for m in report.missing}


def test_the_release_resolves_the_position_the_center_cannot_identify(
    released_visits: Visits, archive: Archive, center_keys: CenterKeys
) -> None:
    """The release names bundle 1's log position, so that position is not listed missing."""
    released_visits.import_(archive, center_keys, released_visits.second)
    report = missing_bundles(archive.conn, operator="Tester", now=NOW)
    assert report.missing == []
    assert [r.log_seq for r in report.released] == [released_visits.bundle1_seq]


def test_every_run_is_audited(visits: Visits, archive: Archive, center_keys: CenterKeys) -> None:
    """Each listing appends an audit entry with the operator and the count."""
    visits.import_(archive, center_keys, visits.second)
    _missing(archive)
    row = archive.conn.execute(
        "SELECT operator, action, details FROM audit ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert (row[0], row[1]) == ("Tester", "bundles-missing") and '"missing": 1' in row[2]


def test_an_archive_imported_before_the_feature_learns_on_upgrade(
    visits: Visits, archive: Archive, center_keys: CenterKeys, archive_root: Path
) -> None:
    """The upgrade migration finds the missing bundle in the receptions imported before."""
    visits.import_(archive, center_keys, visits.second)
    archive.conn.executescript(
        "DROP TABLE courier_bundles; DROP TABLE courier_releases; "
        "DELETE FROM _migrations WHERE name LIKE 'missing-%'"
    )
    migrate(archive.conn, MIGRATIONS, name="center catalog")
    assert [m[1:3] for m in _missing(archive)] == [(visits.bundle1_seq, None)]
