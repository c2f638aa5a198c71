"""`center export`: a file-set readable by dcmtk and pydicom, encrypted, or sent to Orthanc."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet
from typer.testing import CliRunner

from center.cli.app import app
from center.core import audit
from center.core.archive import Archive
from center.core.export import (
    Destination,
    destination,
    export_studies,
    sweep_work_folders,
)
from center.core.pacs import parse_address, store_session
from center.core.search import StudyQuery
from common.crypto import generate_age_keypair
from common.errors import (
    ExportError,
    IntegrityError,
    NothingToExport,
    PacsError,
    QueryInvalid,
)
from tests.center.access.conftest import Imported, cli_env, find_studies_in, pacs_address
from tests.conftest import NOW, require_tool
from tests.peers.orthanc import OrthancPeer, orthanc_factory  # noqa: F401 - a fixture

CLINIC = StudyQuery(facility="clinic-1")


def _folder(path: Path) -> Destination:
    return destination(to=path, encrypt_to=None, to_pacs=None)


def _export(archive: Archive, to: Destination, query: StudyQuery = CLINIC):  # type: ignore[no-untyped-def]
    return export_studies(archive, query, to=to, purpose="second opinion", operator="exp", now=NOW)


def _stored(archive: Archive) -> dict[str, bytes]:
    """Every catalogued instance's archived bytes, by SOP Instance UID."""
    rows = archive.conn.execute("SELECT sop_instance_uid, sha256 FROM instances").fetchall()
    return {uid: archive.store.path(sha).read_bytes() for uid, sha in rows}


@pytest.fixture
def exported(imported_archive: Archive, tmp_path: Path) -> Path:
    out = tmp_path / "cd"
    _export(imported_archive, _folder(out))
    return out


def _fileset_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent != root)


def test_dcmdump_reads_the_dicomdir_and_every_file(exported: Path) -> None:
    """dcmdump exits 0 without an E: line on the DICOMDIR and on each file of the set."""
    dcmdump = require_tool("dcmdump")
    files = [exported / "DICOMDIR", *_fileset_files(exported)]
    assert len(files) > 2
    for path in files:
        done = subprocess.run([dcmdump, str(path)], capture_output=True, text=True, check=False)
        errors = [
            line for line in (done.stdout + done.stderr).splitlines() if line.startswith("E:")
        ]
        assert done.returncode == 0 and errors == [], (path, errors)


def test_pydicom_fileset_finds_every_instance_byte_identical(
    exported: Path, imported_archive: Archive
) -> None:
    """pydicom's FileSet lists every archived instance, each file the archived bytes exactly."""
    stored = _stored(imported_archive)
    fs = FileSet(pydicom.dcmread(exported / "DICOMDIR"))
    found = {str(i.SOPInstanceUID): Path(i.path).read_bytes() for i in fs}
    assert found.keys() == stored.keys()
    assert all(found[uid] == stored[uid] for uid in stored)


def test_files_are_the_clinic_originals(exported: Path, imported: Imported) -> None:
    """Each exported instance equals the file on the clinic's terminal, byte for byte."""
    fs = FileSet(pydicom.dcmread(exported / "DICOMDIR"))
    by_uid = {str(i.SOPInstanceUID): Path(i.path) for i in fs}
    for study in imported.manifest.a_studies:
        for inst in study.instances:
            original = (imported.manifest.root / inst.path).read_bytes()
            assert by_uid[inst.sop_instance_uid].read_bytes() == original


def test_sha256sums_check_with_coreutils(exported: Path) -> None:
    """`sha256sum -c SHA256SUMS` in the export folder passes for every file."""
    sha256sum = require_tool("sha256sum")
    done = subprocess.run(
        [sha256sum, "-c", "--quiet", "SHA256SUMS"], cwd=exported, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout


def test_index_html_lists_studies_and_purpose(exported: Path, imported: Imported) -> None:
    """index.html names each study's accession, the purpose and the operator, with no script."""
    page = (exported / "index.html").read_text("utf-8")
    assert "second opinion" in page and "exp" in page and "<script" not in page
    for study in imported.manifest.a_studies:
        assert study.accession in page


def test_export_is_audited(exported: Path, imported_archive: Archive) -> None:
    """The audit entry (110106) names operator, purpose, destination and the studies sent."""
    [entry] = audit.entries(imported_archive.conn, action="export")
    assert (entry.event_code, entry.operator, entry.outcome) == ("110106", "exp", "success")
    assert entry.details["purpose"] == "second opinion"
    assert entry.details["destination"] == f"folder:{exported}"
    n = imported_archive.conn.execute("SELECT COUNT(*) FROM studies").fetchone()[0]
    assert len(entry.details["studies"]) == n
    assert entry.details["instances"] == len(_stored(imported_archive))


def test_altered_object_stops_the_export(imported_archive: Archive, tmp_path: Path) -> None:
    """An archived object whose bytes changed is refused, nothing is written, it is audited."""
    sha = imported_archive.conn.execute("SELECT sha256 FROM instances LIMIT 1").fetchone()[0]
    path = imported_archive.store.path(sha)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        _export(imported_archive, _folder(tmp_path / "cd"))
    assert not (tmp_path / "cd").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    [entry] = audit.entries(imported_archive.conn, action="export")
    assert entry.outcome == "failed" and entry.details["error"] == "integrity-failed"


def test_missing_object_stops_the_export(imported_archive: Archive, tmp_path: Path) -> None:
    """An object gone from the store is named as missing; nothing is written."""
    sha = imported_archive.conn.execute("SELECT sha256 FROM instances LIMIT 1").fetchone()[0]
    imported_archive.store.path(sha).unlink()
    with pytest.raises(IntegrityError, match="missing"):
        _export(imported_archive, _folder(tmp_path / "cd"))
    assert not (tmp_path / "cd").exists()


def test_non_empty_destination_is_refused(imported_archive: Archive, tmp_path: Path) -> None:
    """A destination folder holding anything is refused and left as it was."""
    (tmp_path / "cd").mkdir()
    (tmp_path / "cd" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError):
        _export(imported_archive, _folder(tmp_path / "cd"))
    assert [p.name for p in (tmp_path / "cd").iterdir()] == ["keep.txt"]


def test_existing_empty_folder_receives_the_set(imported_archive: Archive, tmp_path: Path) -> None:
    """An existing empty folder (like a freshly mounted stick) gets the file-set in place."""
    stick = tmp_path / "stick"
    stick.mkdir()
    _export(imported_archive, _folder(stick))
    assert sorted(p.name for p in stick.iterdir() if not p.name.startswith("PT")) == [
        "DICOMDIR",
        "SHA256SUMS",
        "index.html",
    ]


def test_query_matching_nothing_writes_nothing(imported_archive: Archive, tmp_path: Path) -> None:
    """No matching study is its own error naming the criteria, not their values; no folder."""
    with pytest.raises(NothingToExport) as caught:
        _export(imported_archive, _folder(tmp_path / "cd"), StudyQuery(patient_id="SYN-NOBODY"))
    assert "patient_id" in caught.value.message and "SYN-NOBODY" not in caught.value.message
    assert not (tmp_path / "cd").exists()


def test_export_needs_a_criterion(imported_archive: Archive, tmp_path: Path) -> None:
    """An export without criteria (the whole archive) is refused."""
    with pytest.raises(QueryInvalid):
        _export(imported_archive, _folder(tmp_path / "cd"), StudyQuery())


def test_export_needs_a_purpose(imported_archive: Archive, tmp_path: Path) -> None:
    """An empty purpose is refused: it is what the audit log must say."""
    with pytest.raises(QueryInvalid, match="purpose"):
        export_studies(
            imported_archive, CLINIC, to=_folder(tmp_path / "x"), purpose=" ", operator="e", now=NOW
        )


def test_encrypted_export_opens_with_the_stock_age_cli(
    imported_archive: Archive, tmp_path: Path
) -> None:
    """--encrypt-to writes one .tar.age that `age -d` opens into the same file-set."""
    age = require_tool("age")
    keys = generate_age_keypair()
    identity = tmp_path / "key.txt"
    identity.write_text(keys.identity + "\n")
    report = _export(
        imported_archive,
        destination(to=tmp_path / "out", encrypt_to=keys.recipient, to_pacs=None),
    )
    assert report.output is not None and report.output.name.endswith(".tar.age")
    assert [p.name for p in (tmp_path / "out").iterdir()] == [report.output.name]
    plain = subprocess.run(
        [age, "-d", "-i", str(identity), str(report.output)], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        names = tar.getnames()
        sums = tar.extractfile(f"{report.export_id}/SHA256SUMS")
        assert sums is not None
        for line in sums.read().decode().splitlines():
            digest, relpath = line.split("  ")
            member = tar.extractfile(f"{report.export_id}/{relpath}")
            assert member is not None and hashlib.sha256(member.read()).hexdigest() == digest
    assert f"{report.export_id}/DICOMDIR" in names


def test_encrypted_export_leaves_no_plain_copy(imported_archive: Archive, tmp_path: Path) -> None:
    """After an encrypted export no plain file-set remains in the archive's tmp or beside it."""
    _export(
        imported_archive,
        destination(to=tmp_path / "out", encrypt_to=generate_age_keypair().recipient, to_pacs=None),
    )
    assert list(imported_archive.paths.tmp.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive", "out"]


def test_stale_work_folders_are_swept(imported_archive: Archive, tmp_path: Path) -> None:
    """A work folder of an export killed over a day ago goes; a recent one stays."""
    old, young = (imported_archive.paths.tmp / f".export-{n}.partial" for n in ("old", "new"))
    for folder in (old, young):
        folder.mkdir()
        (folder / "object.dcm").write_bytes(b"x")
    two_days_ago = NOW.timestamp() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(young, (NOW.timestamp(), NOW.timestamp()))
    assert sweep_work_folders(imported_archive.paths.tmp, NOW) == 1
    assert not old.exists() and young.exists()


def test_bad_recipient_is_refused() -> None:
    """--encrypt-to with something that is not an age recipient is a query error."""
    with pytest.raises(QueryInvalid):
        destination(to=Path("x"), encrypt_to="ssh-ed25519 AAAA", to_pacs=None)


@pytest.mark.parametrize("text", ["ORTHANC", "A@host", "A@host:0", "@h:104", "A@h:99999"])
def test_bad_pacs_address_is_named(text: str) -> None:
    """A destination that is not AET@host:port is refused with an example."""
    with pytest.raises(PacsError, match="AET@host:port"):
        parse_address(text)


@pytest.mark.peer
def test_export_by_c_store_is_found_by_c_find(
    imported_archive: Archive, orthanc: OrthancPeer, tmp_path: Path
) -> None:
    """Studies sent by C-STORE to a real Orthanc are then found there with dcmtk's findscu."""
    address = pacs_address(orthanc)
    with orthanc.network():  # the peer may live in a network namespace of its own
        report = _export(imported_archive, destination(to=None, encrypt_to=None, to_pacs=address))
    sent = {s.study_instance_uid for s in report.studies}
    assert sent and sent <= find_studies_in(orthanc, tmp_path)
    [entry] = audit.entries(imported_archive.conn, action="export")
    assert entry.target == f"pacs:{address}" and entry.outcome == "success"


@pytest.mark.peer
def test_altered_object_sends_nothing_to_the_pacs(
    imported_archive: Archive,
    orthanc_factory: Callable[..., OrthancPeer],  # noqa: F811
) -> None:
    """One altered object stops a C-STORE export before the first instance is sent."""
    orthanc = orthanc_factory(aet="EMPTYPACS", always_allow=True)  # holds nothing yet
    rows = imported_archive.conn.execute("SELECT sha256 FROM instances ORDER BY instance_pk")
    path = imported_archive.store.path(rows.fetchall()[-1][0])
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    before = orthanc.instance_count()
    with orthanc.network(), pytest.raises(IntegrityError):
        _export(
            imported_archive, destination(to=None, encrypt_to=None, to_pacs=pacs_address(orthanc))
        )
    assert orthanc.instance_count() == before


@pytest.mark.peer
def test_pacs_association_sets_tcp_nodelay(orthanc: OrthancPeer) -> None:
    """The socket of our C-STORE association sends small PDUs at once (TCP_NODELAY)."""
    contexts = {("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")}
    with orthanc.network(), store_session(parse_address(pacs_address(orthanc)), contexts) as s:
        sock = s.assoc.dul.socket.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.peer
def test_wrong_called_ae_title_is_refused(imported_archive: Archive, orthanc: OrthancPeer) -> None:
    """Orthanc rejecting the association (wrong AE title) is a pacs-failed error, audited."""
    wrong = f"NOTTHEPEER@{orthanc.host}:{orthanc.dicom_port}"
    with orthanc.network(), pytest.raises(PacsError, match="rejected"):
        _export(imported_archive, destination(to=None, encrypt_to=None, to_pacs=wrong))
    [entry] = audit.entries(imported_archive.conn, action="export")
    assert entry.outcome == "failed" and entry.details["instances"] == 0


def test_cli_export_prints_json(imported: Imported, tmp_path: Path) -> None:
    """`center export ... --json` by an exporter reports studies, instances and the output."""
    result = CliRunner().invoke(
        app,
        [
            "export",
            "--facility",
            "clinic-1",
            "--to",
            str(tmp_path / "cd"),
            "--purpose",
            "transfer",
            "--json",
        ],
        env=cli_env(imported.root, "exp"),
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["output"] == str(tmp_path / "cd") and doc["instances"] > 0
    assert (tmp_path / "cd" / "DICOMDIR").is_file()


def test_cli_needs_exactly_one_destination(imported: Imported) -> None:
    """Neither --to nor --to-pacs is a clear query error (before any login)."""
    result = CliRunner().invoke(
        app,
        ["export", "--facility", "clinic-1", "--purpose", "p"],
        env=cli_env(imported.root, "exp"),
    )
    assert result.exit_code == 86 and "--to" in result.output


def test_export_holds_copies_not_links(exported: Path) -> None:
    """The set holds only regular files and folders, none linked to the store."""
    for path in exported.rglob("*"):
        assert path.is_dir() or (path.is_file() and not path.is_symlink())
        assert path.is_dir() or path.stat().st_nlink == 1
