"""An object the center quarantined is brought again by the next pull, as the storage receipt
promises the clinic (found by the reliability suite's state machine, reliability/statemachine.py:
the courier counted it as carried for ever, so it was neither stored nor carried again)."""

from __future__ import annotations

import io
from pathlib import Path

from center.core.archive import Archive, CenterKeys
from center.core.importer import import_drive
from common.bundle import format as fmt
from common.bundle.reader import decrypt_object, open_index
from common.bundle.verify import verify_bundle
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from tests.conftest import NOW, Terminal
from tests.helpers import bundle_dir, do_pull


def _sop_uids(bundle: Path, identity: str) -> list[str]:
    report = verify_bundle(bundle)
    assert report.valid and report.info is not None
    with open_index(bundle, identity, report.info, spool_dir=bundle.parent) as index:
        entries = list(index)
    for entry in entries:
        decrypt_object(bundle, entry, identity, io.BytesIO())
    return [e.header.sop_instance_uid for e in entries]


def test_quarantined_object_is_pulled_again_after_its_receipt_is_delivered(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """A damaged object is quarantined at import; once the storage receipt (which leaves it
    out) is delivered, the next pull carries exactly that instance, and the center stores it."""
    first = bundle_dir(drive, do_pull(device, drive, terminal.root))
    uids = _sop_uids(first, center_keys.identity)
    damaged = first / fmt.object_relpath(1)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x40
    damaged.write_bytes(bytes(data))
    [outcome] = import_drive(
        archive, center_keys, drive.root, operator="Importer", now=NOW
    ).outcomes
    assert (outcome.status, outcome.quarantined) == ("partial", 1)
    second = do_pull(device, drive, terminal.root, receipts=tmp_path / "clinic")
    assert second.delivery is not None and len(second.delivery.delivered) == 1
    assert second.bundle_id is not None
    assert _sop_uids(bundle_dir(drive, second), center_keys.identity) == [uids[0]]
    report = import_drive(archive, center_keys, drive.root, operator="Importer", now=NOW)
    assert [o.status for o in report.outcomes if o.bundle_id == second.bundle_id] == ["imported"]
    stored = {r[0] for r in archive.conn.execute("SELECT sop_instance_uid FROM instances")}
    assert stored == set(uids)
