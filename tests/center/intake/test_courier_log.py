"""The courier's visit log carried in bundles (contract C4) must extend what the center saw."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.courierlog import BASE_UNKNOWN, EXTENDS, FIRST, check_courier_log
from center.core.importreport import IMPORTED, REFUSED
from common.errors import CourierLogForked, CourierLogInvalid
from tests.center.intake.conftest import World, run_import
from tests.center.intake.kit import KitDevice, new_device, write_bundle
from tests.conftest import NOW


def _later(hours: int) -> Any:
    return NOW + timedelta(hours=hours)


def _statuses(archive: Archive, keys: CenterKeys, world: World) -> list[tuple[str, str]]:
    return [(o.status, o.error_ref) for o in run_import(archive, keys, world.drive).outcomes]


def test_first_bundle_log_is_verified_and_remembered(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """The first bundle's log verifies from position 0 and its positions are recorded."""
    outcome = run_import(archive, keys, world.drive).outcomes[0]
    assert outcome.status == IMPORTED and "courier log 1..1 verified" in outcome.notes[0]
    rows = archive.conn.execute("SELECT device_id, seq, hash FROM courier_checkpoints").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(world.device.device_id, 1)]
    assert rows[0][2] == world.device.carried[1]


def test_next_bundle_extends_the_known_checkpoint(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A later bundle whose base is the checkpoint seen before is imported, noted as extending."""
    run_import(archive, keys, world.drive)
    write_bundle(world.drive, world.device, world.recipients, world.files[:1], now=_later(1))
    outcome = run_import(archive, keys, world.drive).outcomes[1]
    assert outcome.status == IMPORTED
    assert outcome.notes == ["courier log extends checkpoint 1 to 2"]


def test_bundles_imported_out_of_order_are_accepted_and_noted(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A bundle whose base the center has not seen yet is imported with a note."""
    second = write_bundle(
        world.drive, world.device, world.recipients, world.files[:1], now=_later(1)
    )
    outcome = run_import(archive, keys, world.drive, only_bundle=second.name).outcomes[0]
    assert outcome.status == IMPORTED and "not seen yet" in outcome.notes[0]
    assert _statuses(archive, keys, world) == [(IMPORTED, ""), ("already-imported", "")]


def test_a_forked_log_is_refused_as_a_security_alert(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A device key used on two laptops: the second history at a seen position is refused."""
    run_import(archive, keys, world.drive)
    clone = copy.deepcopy(world.device)
    write_bundle(world.drive, world.device, world.recipients, world.files[:1], now=_later(1))
    write_bundle(world.drive, clone, world.recipients, world.files[1:2], now=_later(2))
    assert _statuses(archive, keys, world) == [
        ("already-imported", ""),
        (IMPORTED, ""),
        (REFUSED, "courier-log-forked"),
    ]
    event = archive.conn.execute(
        "SELECT event_code FROM audit WHERE target LIKE 'bundle:%' ORDER BY seq DESC"
    ).fetchone()[0]
    assert event == "110113"


def _edit_entry(log: dict[str, Any]) -> None:
    log["entries"][-1]["content"]["objects"] += 1


def _drop_signature(log: dict[str, Any]) -> None:
    log["checkpoint"]["signature"] = log["checkpoint"]["signature"][::-1]


def _other_bundle(log: dict[str, Any]) -> None:
    log["entries"] = []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_edit_entry, "does not match its hash"),
        (_drop_signature, "not signed by device"),
        (_other_bundle, "holds no entry"),
    ],
    ids=["edited-entry", "bad-signature", "no-entry"],
)
def test_an_invalid_log_refuses_the_bundle(
    world: World, archive: Archive, keys: CenterKeys, edit: Any, message: str
) -> None:
    """An edited entry, a checkpoint the device did not sign or a log without this visit."""
    world.bundle.rename(world.root / "set-aside")
    write_bundle(world.drive, world.device, world.recipients, world.files[:1], edit_log=edit)
    outcome = run_import(archive, keys, world.drive).outcomes[0]
    assert (outcome.status, outcome.error_ref) == (REFUSED, "courier-log-invalid")
    assert message in outcome.reason
    event = archive.conn.execute("SELECT event_code FROM audit ORDER BY seq DESC").fetchone()[0]
    assert event == "110113" and not list(archive.store)


def test_bundle_without_a_log_is_refused(world: World, archive: Archive, keys: CenterKeys) -> None:
    """A bundle that carries no courier log is refused: it would hide the device's history."""
    world.bundle.rename(world.root / "set-aside")
    write_bundle(world.drive, world.device, world.recipients, world.files[:1], courier_log=False)
    outcome = run_import(archive, keys, world.drive).outcomes[0]
    assert (outcome.status, outcome.error_ref) == (REFUSED, "courier-log-invalid")
    assert "no courier log" in outcome.reason and not list(archive.store)


# -- the checker alone ------------------------------------------------------------------------


def _check(archive: Archive, device: KitDevice, log: dict[str, Any], bundle: str) -> str:
    return check_courier_log(
        archive.conn,
        device_id=device.device_id,
        device_public=device.public,
        bundle_id=bundle,
        facility_id="clinic-1",
        reception={"courier_log": log},
    ).status


def _visit(device: KitDevice, bundle: str) -> dict[str, Any]:
    return device.visit({"at": "t", "facility_id": "clinic-1", "bundle_id": bundle})


def test_checker_statuses(archive: Archive) -> None:
    """first, extends and base-unknown are told apart."""
    device = new_device()
    first = _visit(device, "b1")
    assert _check(archive, device, first, "b1") == FIRST
    archive.conn.execute(
        "INSERT INTO courier_checkpoints VALUES (?, 1, ?, 'b1')",
        (device.device_id, first["checkpoint"]["hash"]),
    )
    assert _check(archive, device, _visit(device, "b2"), "b2") == EXTENDS
    device.carried = (2, device.entries[-1]["hash"])
    _visit(device, "b3")
    assert _check(archive, device, _visit(device, "b4"), "b4") == BASE_UNKNOWN


def test_checker_detects_a_fork_at_a_known_position(archive: Archive) -> None:
    """A chain whose hash at a position differs from the recorded one raises CourierLogForked."""
    device = new_device()
    log = _visit(device, "b1")
    archive.conn.execute(
        "INSERT INTO courier_checkpoints VALUES (?, 1, ?, 'earlier')", (device.device_id, "cd" * 32)
    )
    with pytest.raises(CourierLogForked):
        _check(archive, device, log, "b1")


def test_checker_refuses_a_log_of_another_bundle(archive: Archive) -> None:
    """A valid log whose last visit is another bundle's is not this bundle's log."""
    device = new_device()
    with pytest.raises(CourierLogInvalid, match="not this bundle's visit"):
        _check(archive, device, _visit(device, "b1"), "b2")
