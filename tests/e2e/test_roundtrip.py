"""Whole workflow on the embedded default: terminal -> drive -> center store."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from center.core.archive import Archive, CenterKeys
from center.core.importer import ALREADY, IMPORTED, REFUSED, import_drive
from common.bundle import format as fmt
from common.crypto import age_passphrase_decrypt, decrypt_bytes
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from tests.conftest import ESCROW_PASS, NOW, Terminal, require_tool
from tests.helpers import bundle_dir, do_pull, first_object


def _import(archive: Archive, keys: CenterKeys, drive: Drive):  # type: ignore[no-untyped-def]
    return import_drive(archive, keys, drive.root, operator="Importer", now=NOW)


def test_a_studies_come_out_byte_identical(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
) -> None:
    """Every A instance is stored byte-identical to the clinic's file, and no B instance is."""
    do_pull(device, drive, terminal.root)
    report = _import(archive, center_keys, drive)
    assert [o.status for o in report.outcomes] == [IMPORTED]
    for study in terminal.manifest.studies:
        for inst in study.instances:
            original = (terminal.root / inst.path).read_bytes()
            row = archive.conn.execute(
                "SELECT sha256 FROM instances WHERE sop_instance_uid = ?", (inst.sop_instance_uid,)
            ).fetchone()
            if study.flagged_a:
                assert row is not None
                assert archive.store.path(row[0]).read_bytes() == original
            else:
                assert row is None
    stored = archive.conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
    assert stored == sum(len(s.instances) for s in terminal.manifest.a_studies)


def test_every_study_gets_an_expiry(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
) -> None:
    """Each stored study has an expiry date at least 10 years after its study date."""
    do_pull(device, drive, terminal.root)
    _import(archive, center_keys, drive)
    rows = archive.conn.execute("SELECT study_date, expiry FROM studies").fetchall()
    assert len(rows) == len(terminal.manifest.a_studies)
    for study_date, expiry in rows:
        assert int(expiry[:4]) >= int(study_date[:4]) + 10


def test_reimport_adds_nothing(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
) -> None:
    """Importing the same drive twice leaves catalog and store unchanged."""
    do_pull(device, drive, terminal.root)
    _import(archive, center_keys, drive)
    before = archive.conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
    objects = sorted(archive.store)
    again = _import(archive, center_keys, drive)
    assert [o.status for o in again.outcomes] == [ALREADY]
    assert archive.conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == before
    assert sorted(archive.store) == objects


def test_second_pull_without_new_studies_carries_nothing(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
) -> None:
    """A second visit with nothing new creates no bundle."""
    do_pull(device, drive, terminal.root)
    again = do_pull(device, drive, terminal.root)
    assert again.bundle_id is None
    assert again.plan.already_carried == sum(len(s.instances) for s in terminal.manifest.a_studies)


def test_unenrolled_device_is_refused(
    courier_home,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,  # type: ignore[no-untyped-def]
    center_keys: CenterKeys,
) -> None:
    """A bundle from a device the center never enrolled is refused with device-unknown."""
    from courier.core.device import load_device, unlock
    from tests.conftest import COURIER_PASS

    unenrolled = unlock(load_device(courier_home), COURIER_PASS)
    do_pull(unenrolled, drive, terminal.root)
    report = _import(archive, center_keys, drive)
    assert [(o.status, o.error_ref) for o in report.outcomes] == [(REFUSED, "device-unknown")]
    assert archive.conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == 0


def test_stock_age_cli_decrypts_an_object(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """Debian's `age` decrypts a bundle object with the center identity to the clinic's bytes."""
    age = require_tool("age")
    result = do_pull(device, drive, terminal.root)
    identity = tmp_path / "identity.txt"
    identity.write_text(center_keys.identity + "\n")
    out = subprocess.run(
        [age, "-d", "-i", str(identity), str(first_object(bundle_dir(drive, result)))],
        capture_output=True,
        check=True,
    ).stdout
    candidates = {
        (terminal.root / i.path).read_bytes()
        for s in terminal.manifest.a_studies
        for i in s.instances
    }
    assert out in candidates


def test_escrow_identity_decrypts_objects(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive_root: Path,
) -> None:
    """The offline escrow identity alone recovers an object (every object has two recipients)."""
    result = do_pull(device, drive, terminal.root)
    escrow = age_passphrase_decrypt(
        (archive_root / "ESCROW-identity-TAKE-OFFLINE.age").read_bytes(), ESCROW_PASS
    ).decode()
    identity = next(line for line in escrow.splitlines() if line.startswith("AGE-SECRET-KEY-"))
    plain = decrypt_bytes(first_object(bundle_dir(drive, result)).read_bytes(), identity)
    assert plain[128:132] == b"DICM"


def _secrets_of(terminal: Terminal) -> set[str]:
    found: set[str] = set()
    for study in terminal.manifest.studies:
        found |= {study.patient_name, study.patient_id, study.accession, study.study_instance_uid}
        found |= {part for part in study.patient_name.replace("=", "^").split("^") if len(part) > 3}
        for series in study.series:
            found.add(series.series_instance_uid)
            found |= {i.sop_instance_uid for i in series.instances}
    return found


def _encodings(text: str) -> list[bytes]:
    out = {text.encode("utf-8")}
    for codec in ("latin-1", "utf-16-le", "iso2022_jp"):
        with contextlib.suppress(UnicodeEncodeError):
            out.add(text.encode(codec))
    return sorted(out)


def test_no_patient_data_in_clear_on_the_drive(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
    tmp_path: Path,
) -> None:
    """No synthetic name, patient ID, accession or UID appears in any byte on the drive."""
    do_pull(device, drive, terminal.root, receipts=tmp_path / "clinic-receipts")
    _import(archive, center_keys, drive)  # also writes the outbox
    needles = [enc for s in _secrets_of(terminal) for enc in _encodings(s)]
    files = [p for p in drive.root.rglob("*") if p.is_file()]
    assert any(p.parent.name == "clinic-1" for p in files), "outbox was written"
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        leaked = [n for n in needles if n in data]
        assert not leaked, f"{path.relative_to(drive.root)} leaks {len(leaked)} values"
    home = device.device.home.root
    for path in (p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not [n for n in needles if n in data], f"courier state {path.name} leaks"
    # The scan is not vacuous: the clinic's receipt, which is meant to name studies, does.
    receipt = next((tmp_path / "clinic-receipts").glob("*.json")).read_bytes()
    assert any(n in receipt for n in needles)


def test_bundle_layout_matches_the_format(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
) -> None:
    """A sealed bundle holds exactly the files bundle format v1 lists."""
    bundle = bundle_dir(drive, do_pull(device, drive, terminal.root))
    names = {p.name for p in bundle.iterdir()}
    assert names == {*fmt.TAG_FILES, fmt.TAGMANIFEST, fmt.SIGNATURE, fmt.DATA}
    assert (drive.root / fmt.VOLUME_MARKER).is_file()
