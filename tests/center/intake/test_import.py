"""`center import` on sound bundles: stored, cataloged, idempotent, unsealed left alone."""

from __future__ import annotations

import json

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.importreport import ALREADY, IMPORTED, REFUSED, UNSEALED
from common.bundle import format as fmt
from common.errors import ArchiveBusy, DriveError, NoBundles
from tests.center.intake.conftest import OBJECTS, World, count, run_import, sha256_of
from tests.center.intake.kit import new_device, resign, write_bundle
from tests.conftest import NOW


def test_every_object_is_stored_byte_identical(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """Each instance of the bundle ends in the store with the clinic file's exact bytes."""
    report = run_import(archive, keys, world.drive)
    assert [(o.status, o.stored, o.quarantined) for o in report.outcomes] == [
        (IMPORTED, OBJECTS, 0)
    ]
    for path in world.files:
        stored = archive.store.path(sha256_of(path))
        assert stored.read_bytes() == path.read_bytes()
    assert count(archive.conn, "instances") == OBJECTS


def test_catalog_holds_the_accompanying_information(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """Patient, study and bundle rows carry the header facts and the reception facts."""
    run_import(archive, keys, world.drive)
    row = archive.conn.execute(
        "SELECT p.patient_id, p.patient_name, p.birth_date, st.accession, st.study_date, "
        "st.modalities, st.body_part, st.expiry, i.sop_class_uid, b.reception_operator, "
        "b.device_id, b.imported_by, b.status FROM instances i JOIN series se USING (series_pk) "
        "JOIN studies st USING (study_pk) JOIN patients p USING (patient_pk) "
        "JOIN bundles b ON b.bundle_id = i.bundle_id LIMIT 1"
    ).fetchone()
    assert all(str(v) for v in tuple(row)[:9])
    assert tuple(row)[9:] == ("Kit Courier", world.device.device_id, "Importer", IMPORTED)


def test_importing_twice_adds_nothing(world: World, archive: Archive, keys: CenterKeys) -> None:
    """A second import of the same drive reports already-imported and changes no row."""
    run_import(archive, keys, world.drive)
    tables = ("instances", "studies", "audit", "storage_receipts", "outbox_documents")
    before = {t: count(archive.conn, t) for t in tables}
    objects = sorted(archive.store)
    again = run_import(archive, keys, world.drive)
    assert [o.status for o in again.outcomes] == [ALREADY]
    assert {t: count(archive.conn, t) for t in tables} == before
    assert sorted(archive.store) == objects


def test_unsealed_bundle_is_listed_and_left_alone(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A bundle without its signature is reported unsealed; nothing is stored or changed."""
    (world.bundle / fmt.SIGNATURE).unlink()
    files_before = sorted(p.relative_to(world.drive) for p in world.drive.rglob("*"))
    report = run_import(archive, keys, world.drive)
    assert [o.status for o in report.outcomes] == [UNSEALED]
    assert count(archive.conn, "instances") == 0 and not list(archive.store)
    after = sorted(
        p.relative_to(world.drive)
        for p in world.drive.rglob("*")
        if p.relative_to(world.drive).parts[0] == fmt.BUNDLES_DIR
    )
    assert after == [p for p in files_before if p.parts[0] == fmt.BUNDLES_DIR]


def test_drive_without_bundles_is_its_own_error(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A drive with an empty bundles folder raises drive-no-bundles."""
    empty = world.root / "empty"
    (empty / fmt.BUNDLES_DIR).mkdir(parents=True)
    with pytest.raises(NoBundles):
        run_import(archive, keys, empty)


def test_unknown_bundle_id_is_its_own_error(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """--bundle with an id the drive does not hold raises drive-no-bundles naming it."""
    with pytest.raises(NoBundles, match="20990101T000000Z-00000000"):
        run_import(archive, keys, world.drive, only_bundle="20990101T000000Z-00000000")


def test_same_uid_with_other_bytes_keeps_both_and_flags_them(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A changed instance (same SOP Instance UID, other bytes) is stored beside the first."""
    run_import(archive, keys, world.drive)
    changed = world.root / "changed.dcm"
    changed.write_bytes(world.files[0].read_bytes()[:-4] + b"\x01\x02\x03\x04")
    later = NOW.replace(hour=NOW.hour + 1)
    write_bundle(world.drive, world.device, world.recipients, [changed], now=later)
    report = run_import(archive, keys, world.drive)
    assert [o.status for o in report.outcomes] == [ALREADY, IMPORTED]
    uid = archive.conn.execute(
        "SELECT sop_instance_uid FROM instances WHERE sha256 = ?", (sha256_of(world.files[0]),)
    ).fetchone()[0]
    rows = archive.conn.execute(
        "SELECT sha256, conflict FROM instances WHERE sop_instance_uid = ?", (uid,)
    ).fetchall()
    assert sorted(r[0] for r in rows) == sorted([sha256_of(world.files[0]), sha256_of(changed)])
    assert all(r[1] == 1 for r in rows)
    assert archive.store.exists(sha256_of(changed)) and archive.store.exists(rows[0][0])


def test_instance_already_stored_is_not_stored_twice(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """The same bytes carried again in a later bundle add a receipt but no object or row."""
    run_import(archive, keys, world.drive)
    objects = sorted(archive.store)
    later = NOW.replace(hour=NOW.hour + 1)
    write_bundle(world.drive, world.device, world.recipients, world.files[:2], now=later)
    report = run_import(archive, keys, world.drive)
    second = report.outcomes[1]
    assert (second.status, second.stored, second.new_instances) == (IMPORTED, 2, 0)
    assert sorted(archive.store) == objects
    assert count(archive.conn, "instances") == OBJECTS
    assert count(archive.conn, "storage_receipts") == 2


def test_bundle_id_reused_for_other_content_is_a_security_alert(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A different bundle under an id already imported is refused and raises an alert."""
    run_import(archive, keys, world.drive)
    lines = (world.bundle / fmt.BAG_INFO).read_text()
    resign(world.bundle, world.device.seed, bag_info={"Created": "2026-11-22T09:31:00+00:00"})
    assert (world.bundle / fmt.BAG_INFO).read_text() != lines
    report = run_import(archive, keys, world.drive)
    assert [(o.status, o.error_ref) for o in report.outcomes] == [(REFUSED, "bundle-id-reused")]
    alert = archive.conn.execute(
        "SELECT event_code, outcome FROM audit ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert tuple(alert) == ("110113", "refused")


def test_newer_format_version_is_its_own_refusal(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A bundle of format version 2 is refused with bundle-format-unsupported, nothing stored."""
    resign(world.bundle, world.device.seed, bag_info={"Bundle-Format-Version": "2"})
    report = run_import(archive, keys, world.drive)
    assert [(o.status, o.error_ref) for o in report.outcomes] == [
        (REFUSED, "bundle-format-unsupported")
    ]
    assert not list(archive.store)


def test_bundle_for_another_center_is_its_own_refusal(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A bundle encrypted to another center's key is refused with bundle-wrong-center."""
    from common.crypto import generate_age_keypair

    other = [generate_age_keypair().recipient, generate_age_keypair().recipient]
    world.bundle.rename(world.root / "set-aside")
    write_bundle(world.drive, world.device, other, world.files[:2])
    report = run_import(archive, keys, world.drive)
    assert [(o.status, o.error_ref) for o in report.outcomes] == [(REFUSED, "bundle-wrong-center")]
    assert not list(archive.store)


def test_bag_info_naming_another_device_is_refused(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """bag-info naming a device other than the signer's is refused as wrong signer."""
    resign(world.bundle, world.device.seed, bag_info={"Courier-Device-Id": "courier-00000000"})
    report = run_import(archive, keys, world.drive)
    assert [(o.status, o.error_ref) for o in report.outcomes] == [(REFUSED, "bundle-wrong-signer")]


def test_refusal_does_not_stop_the_other_bundles(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A refused bundle is reported and the next bundle on the drive is still imported."""
    stranger = new_device("Stranger")
    later = NOW.replace(hour=NOW.hour + 1)
    write_bundle(world.drive, stranger, world.recipients, world.files[:1], now=later)
    report = run_import(archive, keys, world.drive)
    assert [(o.status, o.error_ref) for o in report.outcomes] == [
        (IMPORTED, ""),
        (REFUSED, "device-unknown"),
    ]
    assert json.loads(
        archive.conn.execute(
            "SELECT details FROM audit WHERE event_code = '110113' AND target LIKE 'bundle:%'"
        ).fetchone()[0]
    )["error"] == ("device-unknown")


def test_a_second_import_at_the_same_time_is_refused(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """While another process holds the maintenance lock, import says the archive is busy."""
    import fcntl
    import os

    fd = os.open(world.archive_root / ".maintenance.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(ArchiveBusy):
            run_import(archive, keys, world.drive)
    finally:
        os.close(fd)
    assert count(archive.conn, "instances") == 0
    assert [o.status for o in run_import(archive, keys, world.drive).outcomes] == [IMPORTED]


def test_a_drive_path_that_is_no_folder_is_a_drive_error(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A drive that is not mounted (no such folder) is named as such, not as 'no bundles'."""
    with pytest.raises(DriveError, match="not a folder"):
        run_import(archive, keys, world.root / "not-mounted")
