"""Every file of pydicom's bundled test set, on a terminal, is pulled or skipped with a reason.

pydicom ships real-world oddities: big endian, implicit VR mislabelled explicit, deflated,
truncated pixel data, truncated sequences, DICOMDIRs, files without preamble, non-DICOM files.
None may crash or hang the pull; each is either in the sealed bundle or in the receipt's
skipped list with a reason, and the center can read back every one that was pulled.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom.data
import pytest

from center.core.archive import Archive, CenterKeys
from center.core.importer import import_drive
from common.dicomhdr import HeaderError, read_header
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.pull import pull
from tests.conftest import NOW
from tests.courier.conftest import decrypt_bundle, sealed_bundles, settings

DATA = Path(pydicom.data.__file__).parent


@pytest.fixture
def pydicom_terminal(tmp_path: Path) -> Path:
    """A terminal holding every file of pydicom's data folder (DICOM or not)."""
    root = tmp_path / "terminal"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_every_bundled_file_is_pulled_or_skipped_with_a_reason(
    pydicom_terminal: Path,
    device: UnlockedDevice,
    drive: Drive,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """Each file ends in exactly one place: the bundle or the skipped list (with a reason)."""
    files = {
        p.relative_to(pydicom_terminal).as_posix()
        for p in pydicom_terminal.rglob("*")
        if p.is_file()
    }
    assert len(files) > 150
    result = pull(
        device,
        settings=settings(
            pydicom_terminal, rule="SOPClassUID:1.2.840.10008.", receipts=tmp_path / "r"
        ),
        drive=drive,
        now=NOW,
    )
    skipped = {s.relpath: s.reason for s in result.plan.skipped}
    assert all(reason.strip() for reason in skipped.values())
    objects = decrypt_bundle(sealed_bundles(drive.root)[0], center_keys.identity)
    pulled = sum(len(copies) for copies in objects.values())
    assert result.plan.not_selected == 0  # the rule selects every standard SOP class
    assert pulled + len(skipped) == len(files)
    assert (
        "test_files/MR_truncated.dcm" in skipped
        and "truncated" in skipped["test_files/MR_truncated.dcm"]
    )
    assert "test_files/rtplan_truncated.dcm" in skipped
    assert "DICOMDIR" in skipped["test_files/dicomdirtests/DICOMDIR"]
    receipt = json.loads(next((tmp_path / "r").glob("reception-*.json")).read_bytes())
    assert {item["item"] for item in receipt["skipped"]} == set(skipped)


def test_every_bundled_file_is_read_or_refused_with_a_header_error() -> None:
    """Header reading never raises anything but HeaderError on pydicom's files."""
    outcomes = {"read": 0, "refused": 0}
    for path in sorted(p for p in DATA.rglob("*") if p.is_file()):
        try:
            read_header(path)
            outcomes["read"] += 1
        except HeaderError as exc:
            assert exc.reason
            outcomes["refused"] += 1
    assert outcomes["read"] > 100 and outcomes["refused"] > 20


def test_the_center_imports_what_was_pulled_from_pydicom_files(
    pydicom_terminal: Path,
    device: UnlockedDevice,
    drive: Drive,
    archive: Archive,
    center_keys: CenterKeys,
) -> None:
    """The bundle of odd but whole files imports at the center without a refusal."""
    pull(
        device,
        settings=settings(pydicom_terminal, rule="SOPClassUID:1.2.840.10008."),
        drive=drive,
        now=NOW,
    )
    report = import_drive(archive, center_keys, drive.root, operator="Importer", now=NOW)
    assert [o.status for o in report.outcomes] == ["imported"], [o.reason for o in report.outcomes]
