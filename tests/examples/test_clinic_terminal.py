"""Tests for the synthetic clinic-terminal generator (examples.clinic_terminal)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from examples.clinic_terminal import (
    TerminalManifest,
    TerminalSpec,
    generate_terminal,
    main,
    spec_for_total_size,
)

SMALL = TerminalSpec(seed=3, patients=8, studies=12, pixel_bytes=4 * 1024)
SOP_CLASSES = {
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "MG": "1.2.840.10008.5.1.4.1.1.1.2",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
}
REQUIRED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "AccessionNumber",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "StudyDescription",
    "SeriesDescription",
    "SeriesNumber",
    "InstanceNumber",
    "Modality",
    "BodyPartExamined",
    "InstitutionName",
    "ReferringPhysicianName",
    "SpecificCharacterSet",
)


@pytest.fixture(scope="module")
def terminal(tmp_path_factory: pytest.TempPathFactory) -> TerminalManifest:
    """One small terminal shared by the read-only tests."""
    return generate_terminal(tmp_path_factory.mktemp("terminal"), SMALL)


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_files_have_matching_file_meta(terminal: TerminalManifest) -> None:
    """Every file is Part 10 with file meta matching the dataset and the manifest."""
    for study in terminal.studies:
        for inst in study.instances:
            ds = pydicom.dcmread(terminal.root / inst.path)
            meta = ds.file_meta
            assert ds.preamble == b"\0" * 128
            assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
            assert meta.MediaStorageSOPClassUID == ds.SOPClassUID == inst.sop_class_uid
            assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == inst.sop_instance_uid
            assert meta.ImplementationClassUID
            assert ds.StudyInstanceUID == study.study_instance_uid
            assert ds.AccessionNumber == study.accession
            assert (terminal.root / inst.path).stat().st_size == inst.size


def test_required_attributes_present(terminal: TerminalManifest) -> None:
    """Each instance carries the patient, study, series and instance attributes."""
    for study in terminal.studies:
        ds = pydicom.dcmread(terminal.root / study.instances[0].path)
        missing = [kw for kw in REQUIRED if kw not in ds or ds[kw].value in (None, "")]
        assert not missing
        assert ds.InstitutionName == "Synthetic Clinic"
        assert str(ds.PatientName) == study.patient_name
        assert ds.PatientBirthDate == study.birth_date


def test_image_module_is_consistent(terminal: TerminalManifest) -> None:
    """Pixel attributes agree with each other and with the PixelData length."""
    for study in terminal.studies:
        ds = pydicom.dcmread(terminal.root / study.instances[0].path)
        rgb = study.modality == "US"
        assert ds.PhotometricInterpretation == ("RGB" if rgb else "MONOCHROME2")
        assert ds.SamplesPerPixel == (3 if rgb else 1)
        assert ds.BitsAllocated == (8 if rgb else 16)
        assert ds.HighBit == ds.BitsStored - 1 and ds.BitsStored <= ds.BitsAllocated
        assert ds.PixelRepresentation == 0
        if rgb:
            assert ds.PlanarConfiguration == 0
        expected = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
        assert len(ds.PixelData) == expected
        assert 0.5 * SMALL.pixel_bytes <= expected <= SMALL.pixel_bytes


def test_modalities_use_correct_sop_classes(terminal: TerminalManifest) -> None:
    """All six modalities occur with their storage SOP class; MG is BREAST."""
    assert {s.modality for s in terminal.studies} == set(SOP_CLASSES)
    for study in terminal.studies:
        assert {i.sop_class_uid for i in study.instances} == {SOP_CLASSES[study.modality]}
        assert {se.modality for se in study.series} == {study.modality}
        if study.modality == "MG":
            assert study.body_part == "BREAST"


def test_same_seed_is_byte_identical(tmp_path: Path) -> None:
    """Two generations with the same spec produce identical files and manifests."""
    first = generate_terminal(tmp_path / "one", SMALL)
    second = generate_terminal(tmp_path / "two", SMALL)
    assert _digests(first.root) == _digests(second.root)
    assert first.studies == second.studies


def test_different_seed_differs(tmp_path: Path, terminal: TerminalManifest) -> None:
    """A different seed changes UIDs, patients and file contents."""
    other = generate_terminal(tmp_path, replace(SMALL, seed=SMALL.seed + 1))
    uids = {s.study_instance_uid for s in terminal.studies}
    assert uids.isdisjoint(s.study_instance_uid for s in other.studies)
    assert {s.patient_id for s in terminal.studies} != {s.patient_id for s in other.studies}
    assert set(_digests(terminal.root).values()).isdisjoint(_digests(other.root).values())


def test_a_and_b_studies_flagged_by_accession(terminal: TerminalManifest) -> None:
    """Both A and B studies exist and flagged_a follows the accession prefix."""
    assert terminal.a_studies and terminal.b_studies
    assert len(terminal.a_studies) + len(terminal.b_studies) == len(terminal.studies)
    accessions = [s.accession for s in terminal.studies]
    assert len(set(accessions)) == len(accessions)
    for study in terminal.studies:
        assert re.fullmatch(r"[AB]\d{7}", study.accession)
        assert study.flagged_a == study.accession.startswith("A")
    assert abs(len(terminal.a_studies) / len(terminal.studies) - SMALL.a_fraction) < 0.15


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_minors_under_18_and_adults_not(tmp_path: Path, seed: int) -> None:
    """Each patient is either under 18 at all study dates or 18-90 at all of them."""
    spec = TerminalSpec(seed=seed, patients=10, studies=20, pixel_bytes=64)
    manifest = generate_terminal(tmp_path, spec)
    ages: dict[str, list[int]] = {}
    for study in manifest.studies:
        assert date.fromisoformat(study.birth_date) < date.fromisoformat(study.study_date)
        ages.setdefault(study.patient_id, []).append(study.age_at_study)
    minors = {p for p, a in ages.items() if all(x < 18 for x in a)}
    adults = {p for p, a in ages.items() if all(18 <= x <= 90 for x in a)}
    assert minors | adults == set(ages)
    assert minors and adults


def test_patient_names_and_ids_are_distinctive(terminal: TerminalManifest) -> None:
    """Names and IDs are long, unique per patient, partly non-ASCII with ISO_IR 192."""
    patients = {s.patient_id: s.patient_name for s in terminal.studies}
    assert len(set(patients.values())) == len(patients)
    for pid, name in patients.items():
        assert re.fullmatch(r"SYN\d{7}", pid) and len(name) >= 8
    intl = [s for s in terminal.studies if not s.patient_name.isascii()]
    assert intl
    ds = pydicom.dcmread(terminal.root / intl[0].instances[0].path)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == intl[0].patient_name


def test_paths_are_opaque(terminal: TerminalManifest) -> None:
    """File paths follow DICOM/STnnnnn/SEnnn/IMnnnnn.dcm and carry no patient data."""
    for study in terminal.studies:
        for inst in study.instances:
            assert re.fullmatch(r"DICOM/ST\d{5}/SE\d{3}/IM\d{5}\.dcm", inst.path.as_posix())


def test_start_index_adds_without_collisions(tmp_path: Path) -> None:
    """A later start_index run adds new studies and keeps the first run's files."""
    spec = replace(SMALL, studies=5, pixel_bytes=256)
    first = generate_terminal(tmp_path, spec)
    before = _digests(tmp_path)
    second = generate_terminal(tmp_path, replace(spec, studies=4), start_index=5)
    after = _digests(tmp_path)
    assert {k: after[k] for k in before} == before
    assert len(after) == len(before) + sum(len(s.instances) for s in second.studies)
    both = first.studies + second.studies
    for values in (
        [s.study_instance_uid for s in both],
        [s.accession for s in both],
        [se.series_instance_uid for s in both for se in s.series],
        [i.sop_instance_uid for s in both for i in s.instances],
        [i.path for s in both for i in s.instances],
    ):
        assert len(set(values)) == len(values)


def test_start_index_matches_single_run(tmp_path: Path) -> None:
    """Generating in two visits gives the same studies and bytes as one run."""
    spec = replace(SMALL, studies=9, pixel_bytes=256)
    whole = generate_terminal(tmp_path / "whole", spec)
    first = generate_terminal(tmp_path / "split", replace(spec, studies=6))
    second = generate_terminal(tmp_path / "split", replace(spec, studies=3), start_index=6)
    assert first.studies + second.studies == whole.studies
    assert _digests(tmp_path / "split") == _digests(tmp_path / "whole")


def test_pixel_bytes_scales_size_linearly(tmp_path: Path) -> None:
    """Total size grows linearly with pixel_bytes for the same study structure."""
    manifests = {
        kib: generate_terminal(tmp_path / str(kib), replace(SMALL, pixel_bytes=kib * 1024))
        for kib in (4, 16, 32)
    }
    counts = {sum(len(s.instances) for s in m.studies) for m in manifests.values()}
    assert len(counts) == 1
    sizes = {kib: m.total_bytes for kib, m in manifests.items()}
    slope_low = (sizes[16] - sizes[4]) / 12
    slope_high = (sizes[32] - sizes[16]) / 16
    assert slope_high == pytest.approx(slope_low, rel=0.05)
    assert sizes[32] > 5 * sizes[4]


def test_spec_for_total_size_hits_target(tmp_path: Path) -> None:
    """spec_for_total_size yields a terminal within 15% of the requested size."""
    target = 600 * 1024
    spec = spec_for_total_size(target, seed=4, pixel_bytes=8 * 1024)
    manifest = generate_terminal(tmp_path, spec)
    assert manifest.total_bytes == pytest.approx(target, rel=0.15)


def test_manifest_json_round_trip(terminal: TerminalManifest) -> None:
    """from_json(to_json()) reproduces the manifest exactly."""
    assert TerminalManifest.from_json(terminal.to_json()) == terminal


def test_cli_summary_has_no_patient_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI writes the terminal and manifest and prints one line without patient data."""
    manifest_path = tmp_path / "manifest.json"
    argv = [str(tmp_path / "t"), "--seed", "3", "--patients", "8", "--pixel-bytes", "4K"]
    assert main([*argv, "--manifest", str(manifest_path)]) == 0
    out = capsys.readouterr().out
    manifest = TerminalManifest.from_json(manifest_path.read_text(encoding="utf-8"))
    assert len(out.strip().splitlines()) == 1
    assert f"{len(manifest.studies)} studies" in out and f"{manifest.total_bytes} bytes" in out
    for study in manifest.studies:
        assert study.patient_id not in out
        parts = [p for p in re.split(r"[\^=-]", study.patient_name) if len(p) >= 4]
        assert not any(part in out for part in parts)


@pytest.mark.peer
def test_dcmdump_accepts_files(terminal: TerminalManifest) -> None:
    """dcmtk's dcmdump parses one file per study without errors."""
    dcmdump = shutil.which("dcmdump")
    if dcmdump is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dcmdump is required in CI")
        pytest.skip("dcmdump (dcmtk) not installed")
    for study in terminal.studies:
        path = terminal.root / study.instances[-1].path
        proc = subprocess.run(
            [dcmdump, "-M", str(path)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        lines = (proc.stdout + proc.stderr).splitlines()
        assert not [line for line in lines if line.startswith("E:")]
