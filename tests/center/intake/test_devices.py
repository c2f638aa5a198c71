"""The device registry: enrolment and revocation are audited, revocation is final."""

from __future__ import annotations

import json

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.devices import enroll, find, list_devices, revoke
from center.core.importreport import REFUSED
from common.errors import ConfigError, DeviceRevoked, DeviceUnknown
from tests.center.intake.conftest import World, run_import
from tests.center.intake.kit import new_device
from tests.conftest import NOW


def _last(archive: Archive) -> tuple[str, str, str, dict[str, object]]:
    row = archive.conn.execute(
        "SELECT operator, action, event_code, details FROM audit ORDER BY seq DESC"
    ).fetchone()
    return row[0], row[1], row[2], json.loads(row[3])


def test_enrolment_is_recorded_as_a_security_configuration_change(archive: Archive) -> None:
    """Enrolling a device writes an audit entry naming the operator and the fingerprint."""
    device = new_device("New")
    assert enroll(archive, device.card(), operator="Officer", now=NOW).created
    operator, action, event, details = _last(archive)
    assert (operator, action, event) == ("Officer", "enroll", "110113")
    assert details == {
        "event_type": "110129",
        "fingerprint": device.fingerprint,
        "device_operator": "New",
    }


def test_enrolling_the_same_card_again_changes_nothing(world: World, archive: Archive) -> None:
    """A second enrolment of a known device reports it and adds no row or entry."""
    entries = archive.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    again = enroll(archive, world.device.card(), operator="Officer", now=NOW)
    assert not again.created
    assert archive.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == entries


def test_revocation_is_audited_with_its_reason(world: World, archive: Archive) -> None:
    """Revoking by fingerprint marks the device revoked, by whom and why, in the log too."""
    revoked = revoke(
        archive, world.device.fingerprint, reason="laptop stolen", operator="Officer", now=NOW
    )
    assert (revoked.status, revoked.revoked_by, revoke_reason(archive, world)) == (
        "revoked",
        "Officer",
        "laptop stolen",
    )
    operator, action, event, details = _last(archive)
    assert (operator, action, event, details["reason"]) == (
        "Officer",
        "revoke",
        "110113",
        "laptop stolen",
    )


def revoke_reason(archive: Archive, world: World) -> str | None:
    found = find(archive.conn, world.device.device_id)
    return None if found is None else found.revoke_reason


def test_a_revoked_device_cannot_be_enrolled_again(world: World, archive: Archive) -> None:
    """Revocation is final: the same card is refused."""
    revoke(archive, world.device.device_id, reason="lost", operator="Officer", now=NOW)
    with pytest.raises(DeviceRevoked):
        enroll(archive, world.device.card(), operator="Officer", now=NOW)


def test_revoking_an_unknown_device_is_its_own_error(archive: Archive) -> None:
    """An id that names no enrolled device raises device-unknown."""
    with pytest.raises(DeviceUnknown):
        revoke(archive, "courier-ffffffff", reason="x", operator="Officer", now=NOW)


def test_a_revocation_needs_a_reason(world: World, archive: Archive) -> None:
    """An empty reason is refused before anything changes."""
    with pytest.raises(ConfigError):
        revoke(archive, world.device.device_id, reason=" ", operator="Officer", now=NOW)
    assert list_devices(archive)[0].status == "active"


def test_bundle_of_a_revoked_device_is_refused_as_an_alert(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """After revocation the device's sealed bundle is refused and the refusal audited."""
    revoke(archive, world.device.device_id, reason="lost", operator="Officer", now=NOW)
    outcome = run_import(archive, keys, world.drive).outcomes[0]
    assert (outcome.status, outcome.error_ref) == (REFUSED, "device-revoked")
    operator, action, event, details = _last(archive)
    assert (operator, action, event, details["error"]) == (
        "Importer",
        "import",
        "110113",
        "device-revoked",
    )
    assert not list(archive.store)
