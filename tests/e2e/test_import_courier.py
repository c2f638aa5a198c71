"""The center's intake against bundles, logs and confirmations the real courier writes
(contracts C1 to C4): pull, import, deliver, pull again, import again."""

from __future__ import annotations

from pathlib import Path

import pytest

from center.core.archive import Archive, CenterKeys
from center.core.importer import ImportReport, import_drive
from center.core.outbox import RECORDED, pending
from courier.core.deliver import deliver
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from examples.clinic_terminal import TerminalSpec, generate_terminal
from tests.conftest import NOW, Terminal
from tests.helpers import do_pull


def _import(archive: Archive, keys: CenterKeys, drive: Drive) -> ImportReport:
    return import_drive(archive, keys, drive.root, operator="Importer", now=NOW)


@pytest.fixture
def first_visit(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
) -> ImportReport:
    do_pull(device, drive, terminal.root)
    return _import(archive, center_keys, drive)


def test_first_bundle_carries_a_log_the_center_verifies(first_visit: ImportReport) -> None:
    """The courier's first bundle is imported and its visit log verified from the start."""
    [outcome] = first_visit.outcomes
    assert outcome.status == "imported"
    assert outcome.notes == ["courier log 1..1 verified"]


def test_delivery_confirmation_comes_back_and_is_recorded(
    first_visit: ImportReport,
    device: UnlockedDevice,
    drive: Drive,
    archive: Archive,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """The courier delivers the storage receipt; the next import records the delivery."""
    delivered = deliver(
        device, facility_id="clinic-1", receipts_dir=tmp_path / "clinic", drive=drive, now=NOW
    )
    receipt_id = first_visit.outcomes[0].receipt_id
    assert [d.document_id for d in delivered.report.delivered] == [receipt_id]
    assert delivered.report.delivered[0].confirmed_instances == first_visit.outcomes[0].stored
    report = _import(archive, center_keys, drive)
    assert [(c.document_id, c.status) for c in report.confirmations] == [(receipt_id, RECORDED)]
    assert pending(archive.conn) == []


def test_next_visit_extends_the_log_and_pulls_only_new_studies(
    first_visit: ImportReport,
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
) -> None:
    """A second visit's bundle extends the checkpoint the center saw, with only new instances."""
    generate_terminal(
        terminal.root, TerminalSpec(seed=3, patients=4, studies=3, pixel_bytes=4096), start_index=8
    )
    do_pull(device, drive, terminal.root)
    report = _import(archive, center_keys, drive)
    assert sorted(o.status for o in report.outcomes) == ["already-imported", "imported"]
    [second] = [o for o in report.outcomes if o.status == "imported"]
    assert second.notes == ["courier log extends checkpoint 1 to 2"]
    assert second.new_instances == second.stored > 0
