"""A drive lost in transit: the operator releases its bundle, the next pull carries the same
instances again on another drive, and when the lost drive turns up after all and both bundles
are imported, the center stores each instance once and both storage receipts confirm them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.importer import ImportReport, import_drive
from common.bundle import format as fmt
from courier.core.deliver import deliver
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive, init_drive
from courier.core.release import list_bundles, release_bundle
from tests.conftest import NOW, Terminal
from tests.courier.conftest import a_instances, decrypt_bundle
from tests.helpers import bundle_dir, do_pull


def _import(archive: Archive, keys: CenterKeys, drive: Drive) -> ImportReport:
    return import_drive(archive, keys, drive.root, operator="Importer", now=NOW)


@pytest.fixture
def both_imported(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> tuple[Drive, Drive, ImportReport, ImportReport]:
    """Pull onto the "lost" drive, release it, pull onto a spare one, import the spare, then
    the lost one that turned up: (lost, spare, spare's import, lost one's import)."""
    lost = drive
    first = do_pull(device, lost, terminal.root)
    assert first.bundle_id is not None
    release_bundle(device, first.bundle_id, reason="drive lost in transit", now=NOW)
    (tmp_path / "spare").mkdir()
    spare = init_drive(tmp_path / "spare")
    second = do_pull(device, spare, terminal.root)
    assert second.instances == first.instances
    assert decrypt_bundle(bundle_dir(spare, second), center_keys.identity) == decrypt_bundle(
        bundle_dir(lost, first), center_keys.identity
    )
    return lost, spare, _import(archive, center_keys, spare), _import(archive, center_keys, lost)


def test_the_center_stores_each_instance_once(
    both_imported: tuple[Drive, Drive, ImportReport, ImportReport],
    archive: Archive,
    terminal: Terminal,
) -> None:
    """Both bundles are imported without error; the second adds no instance and no object."""
    _, _, spare_import, lost_import = both_imported
    [spare_outcome] = spare_import.outcomes
    [lost_outcome] = lost_import.outcomes
    expected = a_instances(terminal)
    assert (spare_outcome.status, spare_outcome.new_instances) == ("imported", len(expected))
    assert (lost_outcome.status, lost_outcome.new_instances, lost_outcome.quarantined) == (
        "imported",
        0,
        0,
    )
    counts = Counter(r[0] for r in archive.conn.execute("SELECT sop_instance_uid FROM instances"))
    assert counts == Counter(set(expected))
    objects = [p for p in archive.paths.objects.rglob("*") if p.is_file()]
    assert len(objects) == len(expected)


def test_both_receipts_confirm_everything_and_nothing_is_carried_again(
    both_imported: tuple[Drive, Drive, ImportReport, ImportReport],
    device: UnlockedDevice,
    terminal: Terminal,
    tmp_path: Path,
) -> None:
    """At the next visit both storage receipts are delivered, each listing every instance as
    stored; every instance of both bundles is confirmed and the pull after carries nothing."""
    lost, spare, spare_import, lost_import = both_imported
    clinic = tmp_path / "clinic"
    visit = do_pull(device, spare, terminal.root, receipts=clinic)
    assert visit.delivery is not None
    assert [d.document_id for d in visit.delivery.delivered] == [
        spare_import.outcomes[0].receipt_id
    ]
    assert visit.bundle_id is None
    found = deliver(device, facility_id="clinic-1", receipts_dir=clinic, drive=lost, now=NOW)
    # The center queued every receipt not yet confirmed delivered on each drive it imported.
    assert lost_import.outcomes[0].receipt_id in {d.document_id for d in found.report.delivered}
    expected = len(a_instances(terminal))
    for outcome in (spare_import.outcomes[0], lost_import.outcomes[0]):
        document = json.loads((clinic / f"{outcome.receipt_id}.json").read_bytes())
        assert (document["totals"]["instances"], document["not_stored"]) == (expected, [])
    assert [(b.instances, b.confirmed) for b in list_bundles(device.device)] == [
        (expected, expected),
        (expected, expected),
    ]
    assert do_pull(device, lost, terminal.root, receipts=clinic).bundle_id is None


def test_a_bundle_refused_whole_is_carried_again_after_its_release(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
) -> None:
    """A bundle the center refuses (a damaged tag file: no storage receipt comes) is released,
    and the next pull onto the same drive brings every instance, which the center stores."""
    first = do_pull(device, drive, terminal.root)
    index = bundle_dir(drive, first) / fmt.INDEX
    data = bytearray(index.read_bytes())
    data[-1] ^= 0x01
    index.write_bytes(bytes(data))
    [refused] = _import(archive, center_keys, drive).outcomes
    assert refused.status == "refused"
    assert first.bundle_id is not None
    release_bundle(device, first.bundle_id, reason="refused by the center", now=NOW)
    second = do_pull(device, drive, terminal.root)
    assert second.bundle_id is not None and second.instances == first.instances
    report = _import(archive, center_keys, drive)
    assert {(o.bundle_id, o.status) for o in report.outcomes} == {
        (first.bundle_id, "refused"),
        (second.bundle_id, "imported"),
    }
    stored = {r[0] for r in archive.conn.execute("SELECT sop_instance_uid FROM instances")}
    assert stored == set(a_instances(terminal))
