"""Fixtures for operators, search, export and output requests.

``imported_root`` is an archive holding a real import of a synthetic terminal (made once per
session, copied per test) with one operator per role. ``add_study`` writes catalog rows
directly, for search tests that need particular names, dates or modalities.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from center.core.archive import Archive, init_archive, open_archive
from center.core.devices import enroll
from center.core.importer import import_drive
from common.environment import Environment
from courier.core.device import CourierHome, init_device, load_device, unlock
from courier.core.drive import init_drive
from examples.clinic_terminal import TerminalManifest, TerminalSpec, generate_terminal
from tests.conftest import (
    CENTER_PASS,
    COURIER_PASS,
    ESCROW_PASS,
    NOW,
    OPERATOR_PASS,
    add_test_operator,
    require_tool,
)
from tests.helpers import do_pull
from tests.peers.orthanc import OrthancPeer, orthanc_factory  # noqa: F401 - a fixture

ROLES = {"boss": "admin", "imp": "importer", "exp": "exporter", "val": "viewer"}


@dataclass(frozen=True)
class Imported:
    root: Path
    manifest: TerminalManifest
    facility: str = "clinic-1"


@pytest.fixture(scope="session")
def imported_template(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    """An archive with a terminal's A studies imported and one operator per role (built once)."""
    base = tmp_path_factory.mktemp("imported")
    env = Environment(clock=lambda: NOW, kdf_log_n=10)
    root = base / "archive"
    init_archive(
        root,
        center_name="Access Center",
        passphrase=CENTER_PASS,
        escrow_passphrase=ESCROW_PASS,
        env=env,
    )
    home = CourierHome(base / "laptop")
    init_device(
        home,
        operator="Field Op",
        center_card=(root / "center-card.json").read_bytes(),
        passphrase=COURIER_PASS,
        env=env,
    )
    manifest = generate_terminal(
        base / "terminal", TerminalSpec(seed=6, patients=4, studies=8, pixel_bytes=2048)
    )
    (base / "drive").mkdir()
    drive = init_drive(base / "drive")
    with open_archive(root) as archive:
        enroll(archive, home.device_card.read_bytes(), operator="boss", now=NOW)
        do_pull(unlock(load_device(home), COURIER_PASS), drive, base / "terminal")
        import_drive(archive, archive.unlock(CENTER_PASS), drive.root, operator="imp", now=NOW)
    for name, role in ROLES.items():
        add_test_operator(root, name, role)
    return Imported(root, manifest)


@pytest.fixture
def imported(imported_template: Imported, tmp_path: Path) -> Imported:
    root = tmp_path / "archive"
    shutil.copytree(imported_template.root, root)
    return Imported(root, imported_template.manifest)


@pytest.fixture
def imported_archive(imported: Imported) -> Iterator[Archive]:
    with open_archive(imported.root) as archive:
        yield archive


def cli_env(root: Path, operator: str, **extra: str) -> dict[str, str]:
    """Variables for running `center` as *operator* on the archive *root*."""
    return {
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
        "CENTER_ARCHIVE": str(root),
        "CENTER_OPERATOR": operator,
        "CENTER_OPERATOR_PASSPHRASE": OPERATOR_PASS,
        **extra,
    }


_counter = itertools.count(1)


def add_study(
    conn: sqlite3.Connection,
    *,
    patient_name: str = "Doe^Jane",
    patient_id: str = "P1",
    facility: str = "clinic-1",
    study_date: str = "20200102",
    modalities: tuple[str, ...] = ("CT",),
    accession: str = "A1",
    expiry: str = "2035-01-02",
    instances: int = 2,
) -> str:
    """Catalog rows for one study (no objects in the store); its Study Instance UID."""
    n = next(_counter)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT OR IGNORE INTO facilities (facility_id, created) VALUES (?, 'x')", (facility,)
    )
    conn.execute(
        "INSERT OR IGNORE INTO devices VALUES ('dev', 'fp', 'op', x'00', 'age1', x'00', 'x', "
        "'x', 'active', NULL)"
    )
    conn.execute(
        "INSERT OR IGNORE INTO bundles VALUES ('b-1', 'dev', ?, 'x', 'x', 'x', 'imported', 0, 0, "
        "'x', '2020-01-01', '{}')",
        (facility,),
    )
    conn.execute(
        "INSERT OR IGNORE INTO patients (facility_id, patient_id, patient_name, birth_date, sex) "
        "VALUES (?, ?, ?, '', '')",
        (facility, patient_id, patient_name),
    )
    patient_pk = conn.execute(
        "SELECT patient_pk FROM patients WHERE facility_id = ? AND patient_id = ?",
        (facility, patient_id),
    ).fetchone()[0]
    uid = f"1.2.826.0.1.3680043.10.1080.9.{n}"
    study_pk = conn.execute(
        "INSERT INTO studies (facility_id, patient_pk, study_instance_uid, accession, study_id, "
        "study_date, study_time, description, modalities, body_part, first_received, expiry, "
        "expiry_rule, expiry_anchor) VALUES (?, ?, ?, ?, '1', ?, '', 'd', ?, '', '2020-01-01', "
        "?, 'r', 'a') RETURNING study_pk",
        (facility, patient_pk, uid, accession, study_date, "/".join(modalities), expiry),
    ).fetchone()[0]
    for s, modality in enumerate(modalities):
        series_pk = conn.execute(
            "INSERT INTO series (study_pk, series_instance_uid, modality, description) "
            "VALUES (?, ?, ?, '') RETURNING series_pk",
            (study_pk, f"{uid}.{s}", modality),
        ).fetchone()[0]
        for i in range(instances):
            conn.execute(
                "INSERT INTO instances (series_pk, sop_instance_uid, sop_class_uid, "
                "transfer_syntax_uid, sha256, size, bundle_id, bundle_seq, source_relpath, "
                "received) VALUES (?, ?, '1.2', '1.2.840.10008.1.2.1', ?, 100, 'b-1', 0, 'x', "
                "'2020-01-01')",
                (series_pk, f"{uid}.{s}.{i}", f"{n:032x}{s:016x}{i:016x}"),
            )
    conn.execute("COMMIT")
    return uid


@pytest.fixture(scope="session")
def orthanc(orthanc_factory: Callable[..., OrthancPeer]) -> OrthancPeer:  # noqa: F811
    """A real Orthanc as an export target (tests/peers/orthanc.py): accepts C-STORE and
    C-FIND from any AE title, refuses associations addressed to another AE title."""
    return orthanc_factory(aet="ORTHANCTEST", always_allow=True)


def pacs_address(peer: OrthancPeer) -> str:
    return f"{peer.aet}@{peer.host}:{peer.dicom_port}"


def find_studies_in(peer: OrthancPeer, workdir: Path) -> set[str]:
    """Study Instance UIDs the peer returns to dcmtk's findscu (a C-FIND at STUDY level)."""
    findscu = require_tool("findscu")
    out = workdir / "find-responses"
    out.mkdir()
    argv = peer.command(
        [
            findscu,
            "-S",
            "-aec",
            peer.aet,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID",
            "-X",
            "-od",
            str(out),
            peer.host,
            str(peer.dicom_port),
        ]
    )
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return {str(pydicom.dcmread(p).StudyInstanceUID) for p in sorted(out.glob("rsp*.dcm"))}
