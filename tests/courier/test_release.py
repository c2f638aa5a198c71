"""Releasing a bundle whose drive was lost (or that the center refused whole): its unconfirmed
instances are carried again by the next pull; confirmed ones stay carried."""

from __future__ import annotations

from pathlib import Path

import pytest

from center.core.archive import CenterKeys
from common.crypto import recipient_of
from common.errors import BundleNotInJournal, ConfigError, NothingToRelease
from courier.core import courierlog
from courier.core.deliver import deliver
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive, init_drive
from courier.core.history import visit_log
from courier.core.journal import Journal
from courier.core.pull import PullResult, pull
from courier.core.release import ReleasePlan, list_bundles, release_bundle
from tests.conftest import NOW, Terminal
from tests.courier.conftest import (
    a_instances,
    decrypt_bundle,
    put_in_outbox,
    settings,
    storage_receipt,
)
from tests.courier.test_resume import _interrupted_pull


def _pull(device: UnlockedDevice, drive: Drive, terminal: Terminal) -> PullResult:
    return pull(device, settings=settings(terminal.root), drive=drive, now=NOW)


def _new_drive(tmp_path: Path, name: str) -> Drive:
    root = tmp_path / name
    root.mkdir()
    return init_drive(root)


def _confirm_elsewhere(
    device: UnlockedDevice,
    drive: Drive,
    keys: CenterKeys,
    instances: dict[str, bytes],
    tmp_path: Path,
) -> None:
    """Deliver a storage receipt of another bundle that confirms *instances* stored."""
    document = storage_receipt(
        "clinic-1", "20261120T100000Z-0000abcd", instances, device.device.center.signing_public
    )
    put_in_outbox(
        drive.root, "clinic-1", document, keys.signing_seed, [recipient_of(device.age_identity)]
    )
    report = deliver(
        device, facility_id="clinic-1", receipts_dir=tmp_path / "receipts", drive=drive, now=NOW
    ).report
    assert len(report.delivered) == 1


def test_released_instances_are_carried_again_byte_identical(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """After a release, a pull onto another drive carries every released instance again, in a
    valid bundle, with the terminal's exact bytes."""
    first = _pull(device, drive, small_terminal)
    assert first.bundle_id is not None
    result = release_bundle(device, first.bundle_id, reason="drive lost in transit", now=NOW)
    expected = a_instances(small_terminal)
    assert result.released_instances == len(expected)
    second = _pull(device, _new_drive(tmp_path, "spare"), small_terminal)
    assert second.bundle_id is not None and second.instances == len(expected)
    carried = decrypt_bundle(
        tmp_path / "spare" / "bundles" / second.bundle_id, center_keys.identity
    )
    assert carried == {uid: [data] for uid, data in expected.items()}


def test_without_a_release_the_instances_are_not_carried_again(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, tmp_path: Path
) -> None:
    """The control of the test above: a pull onto another drive carries nothing while the
    first bundle is not released."""
    _pull(device, drive, small_terminal)
    assert _pull(device, _new_drive(tmp_path, "spare"), small_terminal).bundle_id is None


def test_confirmed_instances_stay_carried(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """Instances a storage receipt confirms are not released: the next pull carries only the
    others."""
    first = _pull(device, drive, small_terminal)
    assert first.bundle_id is not None
    instances = a_instances(small_terminal)
    confirmed_uid = sorted(instances)[0]
    _confirm_elsewhere(
        device, drive, center_keys, {confirmed_uid: instances[confirmed_uid]}, tmp_path
    )
    result = release_bundle(device, first.bundle_id, reason="drive lost", now=NOW)
    assert result.released_instances == len(instances) - 1
    second = _pull(device, _new_drive(tmp_path, "spare"), small_terminal)
    assert second.bundle_id is not None
    carried = decrypt_bundle(
        tmp_path / "spare" / "bundles" / second.bundle_id, center_keys.identity
    )
    assert set(carried) == set(instances) - {confirmed_uid}


def test_a_fully_confirmed_bundle_has_nothing_to_release(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """A bundle whose every instance is confirmed stored is refused with nothing-to-release."""
    first = _pull(device, drive, small_terminal)
    assert first.bundle_id is not None
    _confirm_elsewhere(device, drive, center_keys, a_instances(small_terminal), tmp_path)
    with pytest.raises(NothingToRelease):
        release_bundle(device, first.bundle_id, reason="drive lost", now=NOW)


def test_an_unknown_bundle_is_refused(device: UnlockedDevice) -> None:
    """A bundle id the journal does not know is refused with bundle-not-in-journal."""
    with pytest.raises(BundleNotInJournal):
        release_bundle(device, "20261122T000000Z-00000000", reason="drive lost", now=NOW)


def test_an_empty_reason_is_refused(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """A blank reason is refused before anything is released."""
    first = _pull(device, drive, small_terminal)
    assert first.bundle_id is not None
    with pytest.raises(ConfigError):
        release_bundle(device, first.bundle_id, reason="  ", now=NOW)
    assert list_bundles(device.device)[0].released == 0


def test_a_second_release_releases_nothing_more(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """Releasing the same bundle twice releases nothing the second time, says so, and records
    one release only."""
    first = _pull(device, drive, small_terminal)
    assert first.bundle_id is not None
    release_bundle(device, first.bundle_id, reason="drive lost", now=NOW)
    again = release_bundle(device, first.bundle_id, reason="drive lost", now=NOW)
    assert again.already_released and again.released_instances == 0
    assert len(visit_log(device.device).releases) == 1


def test_the_operator_saying_no_changes_nothing(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """When the confirmation is refused, the plan was shown and nothing is released."""
    first = _pull(device, drive, small_terminal)
    assert first.bundle_id is not None
    shown: list[ReleasePlan] = []

    def refuse(plan: ReleasePlan) -> bool:
        shown.append(plan)
        return False

    result = release_bundle(device, first.bundle_id, reason="lost", now=NOW, confirm=refuse)
    assert result.cancelled and shown[0].instances == first.instances
    assert list_bundles(device.device)[0].released == 0


def test_an_unfinished_bundle_on_a_lost_drive_is_released(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, tmp_path: Path
) -> None:
    """A never-sealed bundle is released: pulls stop asking for its drive and carry its
    instances again."""
    _interrupted_pull(device, drive, small_terminal, "read-back")
    [open_bundle] = list_bundles(device.device)
    assert open_bundle.sealed_at is None and open_bundle.instances > 0
    release_bundle(device, open_bundle.bundle_id, reason="drive lost", now=NOW)
    second = _pull(device, _new_drive(tmp_path, "spare"), small_terminal)
    assert not any("unfinished on another drive" in w for w in second.warnings)
    assert second.instances == len(a_instances(small_terminal))


def test_the_release_is_in_the_chained_courier_log(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """The release appends an entry (reason, counts, bundle) to the courier log, whose chain
    stays intact."""
    first = _pull(device, drive, small_terminal)
    assert first.bundle_id is not None
    release_bundle(device, first.bundle_id, reason="drive lost in transit", now=NOW)
    with Journal.open(device) as journal:
        last = courierlog.entries(journal.conn)[-1].content
    assert (last["action"], last["released_bundle_id"], last["objects"], last["reason"]) == (
        "release-bundle",
        first.bundle_id,
        first.instances,
        "drive lost in transit",
    )
    log = visit_log(device.device)
    assert log.chain_problems == [] and log.releases[0].log_seq == last["seq"]


def test_list_counts_confirmed_and_released(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """`bundle list` counts a bundle's instances, those confirmed and those released."""
    first = _pull(device, drive, small_terminal)
    assert first.bundle_id is not None
    instances = a_instances(small_terminal)
    uid = sorted(instances)[0]
    _confirm_elsewhere(device, drive, center_keys, {uid: instances[uid]}, tmp_path)
    release_bundle(device, first.bundle_id, reason="drive lost", now=NOW)
    [summary] = list_bundles(device.device)
    assert (summary.instances, summary.confirmed, summary.released) == (
        len(instances),
        1,
        len(instances) - 1,
    )
    assert summary.released_by_operator and summary.volume_id == drive.volume_id


def test_the_release_names_the_position_of_the_bundles_visit_entry(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """The release entry carries the log position and hash of the released bundle's own visit
    entry, the checkpoint the bundle carried."""
    first = _pull(device, drive, small_terminal)
    assert first.bundle_id is not None
    release_bundle(device, first.bundle_id, reason="drive lost", now=NOW)
    with Journal.open(device) as journal:
        visit = courierlog.entry_for_bundle(journal.conn, first.bundle_id)
        last = courierlog.entries(journal.conn)[-1].content
    assert visit is not None and visit.seq < last["seq"]
    assert (last["released_log_seq"], last["released_log_hash"]) == (visit.seq, visit.hash)
    assert visit_log(device.device).chain_problems == []


def test_an_unfinished_bundles_release_names_no_position(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """A never-sealed bundle has no position to name: its release entry carries none."""
    _interrupted_pull(device, drive, small_terminal, "read-back")
    [open_bundle] = list_bundles(device.device)
    release_bundle(device, open_bundle.bundle_id, reason="drive lost", now=NOW)
    with Journal.open(device) as journal:
        last = courierlog.entries(journal.conn)[-1].content
    assert last["released_bundle_id"] == open_bundle.bundle_id
    assert "released_log_seq" not in last and "released_log_hash" not in last
