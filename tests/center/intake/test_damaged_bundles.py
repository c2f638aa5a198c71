"""The matrix of damaged bundles: each file type deleted, truncated or bit-flipped, an extra
file, the signature removed, a signer the center never enrolled; each with its outcome."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.importreport import PARTIAL, REFUSED, UNSEALED
from common.bundle import format as fmt
from tests.center.intake.conftest import OBJECTS, World, count, run_import
from tests.center.intake.kit import new_device, write_bundle

OBJECT = fmt.object_relpath(3)


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGES: dict[str, Callable[[Path], None]] = {
    "deleted": _delete,
    "truncated": _truncate,
    "bit-flipped": _flip,
}

# (file, damage) -> (status, error reference); refusals of the origin are security alerts.
EXPECTED: dict[tuple[str, str], tuple[str, str]] = {
    (fmt.BAGIT, "deleted"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.BAGIT, "truncated"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.BAGIT, "bit-flipped"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.BAG_INFO, "deleted"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.BAG_INFO, "truncated"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.BAG_INFO, "bit-flipped"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.MANIFEST, "deleted"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.MANIFEST, "truncated"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.MANIFEST, "bit-flipped"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.PAYLOAD_SIZES, "deleted"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.PAYLOAD_SIZES, "truncated"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.PAYLOAD_SIZES, "bit-flipped"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.INDEX, "deleted"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.INDEX, "truncated"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.INDEX, "bit-flipped"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.RECEPTION, "deleted"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.RECEPTION, "truncated"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.RECEPTION, "bit-flipped"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.TAGMANIFEST, "deleted"): (REFUSED, "bundle-manifest-damaged"),
    (fmt.TAGMANIFEST, "truncated"): (REFUSED, "bundle-bad-signature"),
    (fmt.TAGMANIFEST, "bit-flipped"): (REFUSED, "bundle-bad-signature"),
    (fmt.SIGNATURE, "deleted"): (UNSEALED, ""),
    (fmt.SIGNATURE, "truncated"): (REFUSED, "bundle-bad-signature"),
    (fmt.SIGNATURE, "bit-flipped"): (REFUSED, "bundle-bad-signature"),
    (OBJECT, "deleted"): (PARTIAL, ""),
    (OBJECT, "truncated"): (PARTIAL, ""),
    (OBJECT, "bit-flipped"): (PARTIAL, ""),
}
SECURITY = {"bundle-bad-signature", "device-unknown"}


def _outcome(world: World, archive: Archive, keys: CenterKeys) -> tuple[str, str]:
    report = run_import(archive, keys, world.drive)
    assert len(report.outcomes) == 1
    return report.outcomes[0].status, report.outcomes[0].error_ref


def _last_audit(archive: Archive) -> tuple[str, str, dict[str, object]]:
    row = archive.conn.execute(
        "SELECT event_code, outcome, details FROM audit ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return row[0], row[1], json.loads(row[2])


@pytest.mark.parametrize(("name", "damage"), sorted(EXPECTED), ids=lambda v: str(v))
def test_damaged_file(
    world: World, archive: Archive, keys: CenterKeys, name: str, damage: str
) -> None:
    """Each damaged file gives its expected outcome and nothing unverified is stored."""
    DAMAGES[damage](world.bundle / name)
    status, ref = _outcome(world, archive, keys)
    assert (status, ref) == EXPECTED[name, damage]
    if status == REFUSED:
        assert count(archive.conn, "instances") == 0 and not list(archive.store)
        event, outcome, details = _last_audit(archive)
        assert outcome == "refused" and details["error"] == ref
        assert event == ("110113" if ref in SECURITY else "110107")
    elif status == PARTIAL:
        assert count(archive.conn, "instances") == OBJECTS - 1
        held = archive.conn.execute("SELECT item, reason FROM quarantine").fetchall()
        assert [r[0] for r in held] == [OBJECT]
    else:
        assert count(archive.conn, "audit", "target LIKE 'bundle:%'") == 0


@pytest.mark.parametrize("where", [f"{fmt.DATA}/s0000/stray.age", "notes.txt"])
def test_extra_file_is_refused(
    world: World, archive: Archive, keys: CenterKeys, where: str
) -> None:
    """A file nobody signed, in data/ or beside the tag files, refuses the bundle by name."""
    (world.bundle / where).write_bytes(b"not signed by anyone")
    report = run_import(archive, keys, world.drive)
    outcome = report.outcomes[0]
    assert (outcome.status, outcome.error_ref) == (REFUSED, "bundle-extra-file")
    assert where in outcome.reason
    assert not list(archive.store)


def test_signed_by_an_unenrolled_device_is_a_security_alert(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """A bundle from a device the center never enrolled is refused and raises an alert."""
    world.bundle.rename(world.root / "set-aside")
    write_bundle(world.drive, new_device("Stranger"), world.recipients, world.files[:2])
    assert _outcome(world, archive, keys) == (REFUSED, "device-unknown")
    event, outcome, details = _last_audit(archive)
    assert (event, outcome, details["event_type"]) == ("110113", "refused", "110126")
    assert not list(archive.store)


def test_damage_leaves_what_was_stored_before_untouched(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """Importing a damaged bundle after a good one changes no stored object or row."""
    run_import(archive, keys, world.drive)
    objects = {sha: archive.store.path(sha).read_bytes() for sha in archive.store}
    rows = archive.conn.execute("SELECT * FROM instances ORDER BY instance_pk").fetchall()
    bad = write_bundle(world.drive, world.device, world.recipients, world.files[:2])
    _flip(bad / fmt.MANIFEST)
    report = run_import(archive, keys, world.drive)
    refs = {o.bundle_id: o.error_ref for o in report.outcomes}
    assert refs[bad.name] == "bundle-manifest-damaged"
    assert {sha: archive.store.path(sha).read_bytes() for sha in archive.store} == objects
    assert archive.conn.execute("SELECT * FROM instances ORDER BY instance_pk").fetchall() == rows
