"""Pull behaviour: incremental visits, the fast path, changed instances, selection rules,
skipped files, free space, capacity, confirmations and receipts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pydicom
import pytest

from center.core.archive import CenterKeys
from common.bundle.reader import read_reception
from common.crypto import recipient_of
from common.dicomhdr import read_header_values
from common.errors import DriveFull
from common.receipts import verify_receipt
from courier.core import plan as plan_module
from courier.core.courierlog import verify_block
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.pull import pull
from courier.core.reception import pending_receipts
from examples.clinic_terminal import generate_terminal
from tests.conftest import NOW, Terminal
from tests.courier.conftest import (
    SMALL,
    a_instances,
    decrypt_bundle,
    put_in_outbox,
    sealed_bundles,
    settings,
    storage_receipt,
)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file whose header the planner parses, in order."""
    seen: list[str] = []

    def counting(path: Any, tags: Any) -> Any:
        seen.append(str(path))
        return read_header_values(path, tags)

    monkeypatch.setattr(plan_module, "read_header_values", counting)
    return seen


def test_second_visit_takes_only_new_studies_without_parsing_old_files(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    parses: list[str],
    center_keys: CenterKeys,
) -> None:
    """After new studies arrive, a visit carries only them, and the files seen at the first
    visit are not parsed again (the fast path)."""
    first = pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    old_files = {
        str(small_terminal.root / i.path)
        for s in small_terminal.manifest.studies
        for i in s.instances
    }
    assert set(parses) == old_files
    parses.clear()
    new = generate_terminal(
        small_terminal.root, SMALL, start_index=len(small_terminal.manifest.studies)
    )
    second = pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    new_files = {str(small_terminal.root / i.path) for s in new.studies for i in s.instances}
    assert set(parses) == new_files and second.plan.parsed == len(new_files)
    assert second.plan.already_carried == first.instances
    bundles = sealed_bundles(drive.root)
    assert len(bundles) == 2
    newest = decrypt_bundle(drive.bundles / str(second.bundle_id), center_keys.identity)
    assert set(newest) == set(a_instances(Terminal(small_terminal.root, new)))


def test_touched_but_identical_file_is_parsed_not_pulled(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, parses: list[str]
) -> None:
    """A file whose mtime changed but whose bytes did not is checked, not carried again."""
    pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    study = small_terminal.manifest.a_studies[0]
    path = small_terminal.root / study.instances[0].path
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    parses.clear()
    again = pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    assert parses == [str(path)] and again.bundle_id is None


def _rewrite(path: Path, **changes: str) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)


def test_changed_instance_is_pulled_again_and_flagged(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """An instance carried before whose bytes changed (same SOP Instance UID) is carried
    again, flagged in the index and listed as changed on the receipt."""
    pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    inst = small_terminal.manifest.a_studies[0].instances[0]
    _rewrite(small_terminal.root / inst.path, StudyDescription="corrected by the clinic")
    receipts = tmp_path / "receipts"
    again = pull(
        device, settings=settings(small_terminal.root, receipts=receipts), drive=drive, now=NOW
    )
    assert again.instances == 1 and again.changed == 1
    objects = decrypt_bundle(drive.bundles / str(again.bundle_id), center_keys.identity)
    assert objects == {inst.sop_instance_uid: [(small_terminal.root / inst.path).read_bytes()]}
    receipt = json.loads((receipts / f"reception-{again.bundle_id}.json").read_bytes())
    assert [c["item"] for c in receipt["changed"]] == [inst.path.as_posix()]


def test_unusable_files_are_skipped_with_reasons_and_the_pull_goes_on(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, tmp_path: Path
) -> None:
    """Non-DICOM and truncated files are listed with a reason; the A studies are carried."""
    (small_terminal.root / "notes.txt").write_text("not an image")
    good = small_terminal.root / small_terminal.manifest.a_studies[0].instances[0].path
    cut = small_terminal.root / "DICOM" / "cut.dcm"
    cut.write_bytes(good.read_bytes()[:-100])
    receipts = tmp_path / "receipts"
    result = pull(
        device, settings=settings(small_terminal.root, receipts=receipts), drive=drive, now=NOW
    )
    reasons = {s.relpath: s.reason for s in result.plan.skipped}
    assert "DICM" in reasons["notes.txt"] and "truncated" in reasons["DICOM/cut.dcm"]
    assert result.instances == len(a_instances(small_terminal))
    receipt = json.loads((receipts / f"reception-{result.bundle_id}.json").read_bytes())
    assert {s["item"] for s in receipt["skipped"]} == {"notes.txt", "DICOM/cut.dcm"}


def test_skipped_files_are_not_parsed_again_but_still_listed(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, parses: list[str]
) -> None:
    """An unchanged unusable file is remembered: listed again, not re-read."""
    (small_terminal.root / "notes.txt").write_text("not an image")
    pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    parses.clear()
    again = pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    assert parses == [] and [s.relpath for s in again.plan.skipped] == ["notes.txt"]


class _SmallDrive(Drive):
    def free_bytes(self) -> int:
        return 1_000_000


def test_drive_without_room_is_refused_before_copying(
    device: UnlockedDevice, drive: Drive, terminal: Terminal
) -> None:
    """The free-space check names what is needed and what is missing; nothing is written."""
    small = _SmallDrive(drive.root, drive.volume_id)
    with pytest.raises(DriveFull, match=r"needs .* MB free .* has 1 MB .* more are needed"):
        pull(device, settings=settings(terminal.root), drive=small, now=NOW)
    assert not list(drive.bundles.iterdir())


def test_flag_file_rule_follows_the_clinics_list(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, parses: list[str]
) -> None:
    """Only listed studies are taken; adding one to the list takes it at the next visit,
    although its files were not selected (and not changed) before."""
    studies = small_terminal.manifest.studies
    flag = small_terminal.root / "to-archive.txt"
    flag.write_text(f"# studies to archive\n{studies[1].accession}\n")
    rule = "flag-file:to-archive.txt"
    first = pull(device, settings=settings(small_terminal.root, rule=rule), drive=drive, now=NOW)
    assert first.instances == len(studies[1].instances)
    flag.write_text(f"{studies[1].accession}\n{studies[2].study_instance_uid}\n")
    second = pull(device, settings=settings(small_terminal.root, rule=rule), drive=drive, now=NOW)
    assert second.instances == len(studies[2].instances)


def test_private_tag_rule_selects_on_the_creators_element(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """A flag in a private element (found by its creator) selects those instances only."""
    target = small_terminal.manifest.b_studies[0]
    for inst in target.instances:
        path = small_terminal.root / inst.path
        ds = pydicom.dcmread(path)
        block = ds.private_block(0x0013, "SYNTHETIC CLINIC", create=True)
        block.add_new(0x01, "LO", "ARCHIVE")
        ds.save_as(path, enforce_file_format=True)
    rule = "(0013,SYNTHETIC CLINIC,01):ARCH"
    result = pull(device, settings=settings(small_terminal.root, rule=rule), drive=drive, now=NOW)
    assert result.instances == len(target.instances)


def test_capacity_warning_reaches_receipt_and_reception_log(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    tmp_path: Path,
    center_keys: CenterKeys,
) -> None:
    """A terminal below its threshold is warned about, with the figures, in the receipt and
    in the bundle's reception log."""
    receipts = tmp_path / "receipts"
    result = pull(
        device,
        settings=settings(small_terminal.root, receipts=receipts, threshold="100%"),
        drive=drive,
        now=NOW,
    )
    assert result.capacity is not None and result.capacity.low
    assert result.warnings and "running out of space" in result.warnings[0]
    receipt = json.loads((receipts / f"reception-{result.bundle_id}.json").read_bytes())
    assert receipt["warnings"] == result.warnings
    assert receipt["visit"]["capacity"]["dicom_bytes"] == result.capacity.dicom_bytes > 0
    html = (receipts / f"reception-{result.bundle_id}.html").read_text()
    assert "running out of space" in html and "Terminal capacity" in html
    log = read_reception(drive.bundles / str(result.bundle_id), center_keys.identity)
    assert log["capacity"]["total_bytes"] == result.capacity.total_bytes and log["warnings"]


def test_instances_confirmed_stored_are_not_pulled(
    device: UnlockedDevice,
    drive: Drive,
    small_terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """A storage receipt delivered at the start of the visit (for instances another courier
    carried) keeps those instances from being pulled."""
    stored = a_instances(small_terminal)
    first_uid = sorted(stored)[0]
    document = storage_receipt(
        "clinic-1",
        "20261120T100000Z-0000abcd",
        {first_uid: stored[first_uid]},
        device.device.center.signing_public,
    )
    put_in_outbox(
        drive.root,
        "clinic-1",
        document,
        center_keys.signing_seed,
        [recipient_of(device.age_identity)],
    )
    result = pull(
        device,
        settings=settings(small_terminal.root, receipts=tmp_path / "r"),
        drive=drive,
        now=NOW,
    )
    assert [d.confirmed_instances for d in result.delivery.delivered] == [1]  # type: ignore[union-attr]
    assert result.instances == len(stored) - 1 and result.plan.confirmed == 1


def test_unwritable_receipts_folder_keeps_the_receipt_encrypted_until_delivered(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, tmp_path: Path
) -> None:
    """A receipts path that cannot be written gets an encrypted copy on the laptop (no patient
    data in clear there); the next visit with a writable folder hands it to the clinic."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    result = pull(
        device,
        settings=settings(small_terminal.root, receipts=blocked / "receipts"),
        drive=drive,
        now=NOW,
    )
    assert result.receipt is not None and result.receipt.files is None
    assert result.receipt.fallback is not None and "not writable" in result.receipt.reason
    home = device.device.home.root
    assert pending_receipts(home, "clinic-1") == [f"reception-{result.bundle_id}"]
    accessions = [s.accession.encode() for s in small_terminal.manifest.a_studies]
    for path in result.receipt.fallback.iterdir():
        assert not any(a in path.read_bytes() for a in accessions)
    receipts = tmp_path / "receipts"
    again = pull(
        device, settings=settings(small_terminal.root, receipts=receipts), drive=drive, now=NOW
    )
    [delivered] = again.pending_delivered
    body = (receipts / f"reception-{result.bundle_id}.json").read_bytes()
    sig = (receipts / f"reception-{result.bundle_id}.json.sig").read_bytes()
    assert verify_receipt(body, sig, device.device.signing_public)
    assert pending_receipts(home, "clinic-1") == [] and delivered.files is not None


def test_bundles_carry_a_chained_courier_log(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, center_keys: CenterKeys
) -> None:
    """The second bundle's log starts at the first bundle's checkpoint and includes the
    visit in between that carried nothing; both verify with the device key."""
    first = pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)  # nothing new
    generate_terminal(small_terminal.root, SMALL, start_index=len(small_terminal.manifest.studies))
    second = pull(device, settings=settings(small_terminal.root), drive=drive, now=NOW)
    public = device.device.signing_public
    log1 = read_reception(drive.bundles / str(first.bundle_id), center_keys.identity)["courier_log"]
    log2 = read_reception(drive.bundles / str(second.bundle_id), center_keys.identity)[
        "courier_log"
    ]
    assert verify_block(log1, public) == [] and verify_block(log2, public) == []
    assert log1["base"]["seq"] == 0 and log2["base"] == {
        "seq": log1["checkpoint"]["seq"],
        "hash": log1["checkpoint"]["hash"],
    }
    assert [e["content"]["bundle_id"] for e in log2["entries"]] == [None, second.bundle_id]


def test_receipt_lists_what_was_received(
    device: UnlockedDevice, drive: Drive, terminal: Terminal, tmp_path: Path
) -> None:
    """The reception receipt lists each A study with its instance count, and is signed."""
    receipts = tmp_path / "receipts"
    result = pull(device, settings=settings(terminal.root, receipts=receipts), drive=drive, now=NOW)
    doc = json.loads((receipts / f"reception-{result.bundle_id}.json").read_bytes())
    assert {(s["accession"], s["instances"]) for s in doc["studies"]} == {
        (s.accession, len(s.instances)) for s in terminal.manifest.a_studies
    }
    assert doc["visit"]["not_selected"] == sum(
        len(s.instances) for s in terminal.manifest.b_studies
    )


def test_read_only_terminal_share_keeps_the_receipt(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal, tmp_path: Path
) -> None:
    """On a really read-only mount (root only: a read-only tmpfs) the receipt is kept on the
    laptop and the operator is told where and why."""
    import shutil
    import subprocess

    folder = tmp_path / "read-only-share"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a read-only file system needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        result = pull(
            device, settings=settings(small_terminal.root, receipts=folder), drive=drive, now=NOW
        )
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    assert result.receipt is not None and result.receipt.files is None
    assert "Read-only file system" in result.receipt.reason
    assert result.receipt.fallback is not None and any(result.receipt.fallback.iterdir())
