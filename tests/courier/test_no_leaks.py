"""No patient data in clear in the courier's state folder or on the drive, whatever it did."""

from __future__ import annotations

import contextlib
from pathlib import Path

from center.core.archive import CenterKeys
from common.crypto import recipient_of
from courier.core.deliver import deliver
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.facilities import Facility, add_facility
from courier.core.history import visit_log
from courier.core.pull import pull
from courier.core.scan import scan
from tests.conftest import NOW, Terminal
from tests.courier.conftest import a_instances, put_in_outbox, settings, storage_receipt


def _needles(terminal: Terminal) -> list[bytes]:
    values: set[str] = set()
    for study in terminal.manifest.studies:
        values |= {study.patient_id, study.accession, study.study_instance_uid, study.study_date}
        values |= {p for p in study.patient_name.replace("=", "^").split("^") if len(p) > 3}
        for series in study.series:
            values.add(series.series_instance_uid)
            values |= {i.sop_instance_uid for i in series.instances}
    found = []
    for value in values:
        for codec in ("utf-8", "latin-1", "utf-16-le"):
            with contextlib.suppress(UnicodeEncodeError):
                found.append(value.encode(codec))
    return found


def _leaks(root: Path, needles: list[bytes]) -> list[str]:
    leaks = []
    for path in (p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        leaks += [f"{path.relative_to(root)}" for n in needles if n in data]
    return sorted(set(leaks))


def test_courier_state_and_drive_hold_no_patient_data(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """After scan, pulls (one with its receipt kept on the laptop), deliveries with
    confirmations, a changed rule and the log, no name, ID, accession, date or UID of the
    terminal is in clear in the courier home or on the drive."""
    home = device.device.home.root
    add_facility(home, Facility("clinic-1", "Test", str(terminal.root), rule="StudyID:1"))
    scan(device, settings(terminal.root), NOW)
    blocked = tmp_path / "file"
    blocked.write_text("x")
    pull(device, settings=settings(terminal.root, receipts=blocked / "r"), drive=drive, now=NOW)
    (terminal.root / "DICOM" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\1" * 50)
    instances = a_instances(terminal)
    document = storage_receipt(
        "clinic-1", "20261120T100000Z-0000abcd", instances, device.device.center.signing_public
    )
    put_in_outbox(
        drive.root,
        "clinic-1",
        document,
        center_keys.signing_seed,
        [recipient_of(device.age_identity)],
    )
    deliver(
        device, facility_id="clinic-1", receipts_dir=tmp_path / "receipts", drive=drive, now=NOW
    )
    pull(device, settings=settings(terminal.root, rule="StudyID:2"), drive=drive, now=NOW)
    visit_log(device.device)
    needles = _needles(terminal)
    assert _leaks(home, needles) == []
    assert _leaks(drive.root, needles) == []
    # The scan is not vacuous: the clinic's copy of the storage receipt names the instances.
    assert _leaks(tmp_path / "receipts", needles)
