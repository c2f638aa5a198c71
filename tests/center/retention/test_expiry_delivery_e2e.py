"""An expiry notice travels with the real courier (C1, C2) and its delivery gates the purge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from center.core.archive import Archive, CenterKeys
from center.core.expiry import NOTICE_UNDELIVERED, WAITING, study_states
from center.core.facilities import set_contract
from center.core.importer import import_drive
from center.core.notices import list_notices, notify
from center.core.purge import purge
from center.core.retention import install_rules
from center.core.retention_apply import apply_rules
from common.retention_rules import preset_text
from courier.core.deliver import deliver
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from tests.conftest import NOW, Terminal
from tests.helpers import do_pull


def test_notice_delivered_by_the_courier_starts_the_grace_period(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """Notice issued, carried on the next visit, confirmed by the courier; deletion waits for
    the grace period counted from that delivery."""
    do_pull(device, drive, terminal.root)
    import_drive(archive, center_keys, drive.root, operator="Importer", now=NOW)
    install_rules(archive.conn, preset_text("japan"), origin="japan", operator="A", now=NOW)
    root = archive.paths.root
    apply_rules(
        archive.conn, archive.store, now=NOW, operator="A", override_reason="test", lock_root=root
    )
    set_contract(archive.conn, "clinic-1", on_expiry="notify", grace_days=30, operator="A", now=NOW)
    [notice] = notify(archive, center_keys, now=NOW, operator="N", until=NOW.date()).notices
    expired = {s["study_instance_uid"] for s in notice.studies}
    assert expired
    statuses = {s.decision.status for s in study_states(archive.conn, None, now=NOW)}
    assert NOTICE_UNDELIVERED in statuses

    import_drive(archive, center_keys, drive.root, operator="Importer", now=NOW)  # pushes it
    clinic = tmp_path / "clinic-receipts"
    delivered = deliver(device, facility_id="clinic-1", receipts_dir=clinic, drive=drive, now=NOW)
    assert notice.notice_id in [d.document_id for d in delivered.report.delivered]
    assert (clinic / f"{notice.notice_id}.html").is_file()
    import_drive(archive, center_keys, drive.root, operator="Importer", now=NOW)  # confirmation
    [row] = [n for n in list_notices(archive.conn) if n.notice_id == notice.notice_id]
    assert row.delivered_at is not None

    states = {
        s.study.facts.study_instance_uid: s for s in study_states(archive.conn, None, now=NOW)
    }
    assert {states[uid].decision.status for uid in expired} == {WAITING}
    assert (
        purge(
            archive.conn, archive.store, now=NOW, operator="P", execute=True, lock_root=root
        ).deleted
        == []
    )
    later = NOW + timedelta(days=30)
    gone = purge(archive.conn, archive.store, now=later, operator="P", execute=True, lock_root=root)
    assert {d.study_instance_uid for d in gone.deleted} == expired
