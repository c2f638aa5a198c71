"""Deterministic generator for a synthetic clinic "terminal" of DICOM files.

A terminal is a folder of DICOM Part 10 files laid out like a small modality
export (``DICOM/ST00000/SE001/IM00001.dcm``).  Studies whose AccessionNumber
starts with ``A`` are meant to be archived, ``B`` studies stay local.  All data
is synthetic; every value is derived from the seed, so the same spec always
produces byte-identical files.

Usage::

    python -m examples.clinic_terminal OUT [--seed N] [--total-size 1.2G]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from math import isqrt
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

_NAMESPACE = uuid.UUID("6f1d2c1e-5b7a-4c1e-9a57-7e1a1c0ffee5")
_HISTORY_DAYS = 8 * 365  # study dates fall within this many days before "today"
_HEADER_ESTIMATE = 1300  # approximate non-pixel bytes per file
_KIB = 1024


def _words(text: str) -> tuple[str, ...]:
    """Split a whitespace-separated table literal into a tuple."""
    return tuple(text.split())


# Synthetic name parts; given names are indexed by sex (0 = F, 1 = M).
_FAMILY = _words(
    "Ashworth Blackwood Carrington Davenport Ellingham Fairbanks Greenhalgh Hollingsworth"
    " Inglewood Kettleborough Lockhart Merriweather Northcott Oakenfold Pemberton Quenby"
    " Rutherford Summerhayes Thistlewood Underhill Vandermeer Wetherby Yarborough Zimmerley"
)
_GIVEN = (
    _words(
        "Araminta Beatrix Cordelia Delphine Evangeline Florentina Georgiana Henrietta Imogen"
        " Josephine Marguerite Rosalind"
    ),
    _words(
        "Alistair Barnaby Cornelius Desmond Ebenezer Fitzgerald Gideon Horatio Ignatius"
        " Jebediah Leopold Montgomery"
    ),
)
_FAMILY_INTL = _words(
    "Müller Schäfer Ødegård Çelik Öztürk Núñez Dvořák Łukasiewicz Søndergaard Ibáñez"
    " Gräßlin Håkansson"
)
_GIVEN_INTL = (
    _words("Ayşe Zoë Łucja Søren-Maja Inès Björg Małgorzata"),
    _words("Jürgen Björn François Håkon José Tomáš Jérôme"),
)
# Japanese names as "romaji=kanji" (written as alphabetic=ideographic PN groups).
_FAMILY_JA = _words(
    "Teshigawara=勅使河原 Hasegawa=長谷川 Igarashi=五十嵐 Yamanouchi=山之内 Kobayashi=小林"
    " Watanabe=渡辺 Matsumoto=松本 Takahashi=高橋 Nakamura=中村 Fujiwara=藤原"
)
_GIVEN_JA = (
    _words("Sakurako=桜子 Hanako=花子 Michiko=美智子 Yoshiko=芳子 Tomoyo=知世"),
    _words("Kentarou=健太郎 Shinnosuke=慎之介 Taichirou=太一郎 Hiroshi=博 Makoto=誠"),
)
_REFERRERS = ("Oakhurst^Philippa^^Dr", "Brandreth^Lucian^^Dr", "Coldwell^Anouk^^Dr")
_MASK_12 = bytes(b & 0x0F for b in range(256))  # high byte of LE words: keep 12 bits
_MASK_14 = bytes(b & 0x3F for b in range(256))  # ... keep 14 bits


@dataclass(frozen=True)
class _Modality:
    """Static description of one modality: SOP class, anatomy and pixel format."""

    code: str
    sop_class_uid: str
    exams: tuple[tuple[str, str], ...]  # (BodyPartExamined, StudyDescription)
    series: tuple[str, ...]  # SeriesDescription cycle
    rgb: bool = False
    bits_stored: int = 12


_MODALITIES = (
    _Modality(
        "CR",
        "1.2.840.10008.5.1.4.1.1.1",
        (("CHEST", "XR Chest PA and lateral"), ("HAND", "XR Hand left"), ("KNEE", "XR Knee right")),
        ("PA", "LAT", "OBL"),
    ),
    _Modality(
        "DX",
        "1.2.840.10008.5.1.4.1.1.1.1",
        (("CHEST", "DX Chest PA"), ("ANKLE", "DX Ankle left"), ("SHOULDER", "DX Shoulder right")),
        ("AP", "LAT", "Y-view"),
    ),
    _Modality(
        "CT",
        "1.2.840.10008.5.1.4.1.1.2",
        (
            ("HEAD", "CT Head without contrast"),
            ("ABDOMEN", "CT Abdomen portal venous"),
            ("CHEST", "CT Thorax low dose"),
        ),
        ("Axial 5mm", "Coronal 3mm", "Scout"),
    ),
    _Modality(
        "MR",
        "1.2.840.10008.5.1.4.1.1.4",
        (("KNEE", "MR Knee right"), ("HEAD", "MR Brain"), ("LSPINE", "MR Lumbar spine")),
        ("T1 SE", "T2 TSE", "PD FS"),
    ),
    _Modality(
        "MG",
        "1.2.840.10008.5.1.4.1.1.1.2",
        (("BREAST", "MG Screening bilateral"), ("BREAST", "MG Diagnostic left")),
        ("L CC", "L MLO", "R CC"),
        bits_stored=14,
    ),
    _Modality(
        "US",
        "1.2.840.10008.5.1.4.1.1.6.1",
        (("ABDOMEN", "US Abdomen complete"), ("THYROID", "US Thyroid"), ("PELVIS", "US Pelvis")),
        ("B-mode", "Doppler", "Measurements"),
        rgb=True,
        bits_stored=8,
    ),
)


@dataclass(frozen=True)
class TerminalSpec:
    """Parameters of a synthetic terminal; the same spec yields the same bytes."""

    seed: int = 1
    patients: int = 6
    studies: int = 12
    series_per_study: tuple[int, int] = (1, 3)
    instances_per_series: tuple[int, int] = (1, 4)
    pixel_bytes: int = 32 * _KIB
    a_fraction: float = 0.6
    minor_fraction: float = 0.3
    reference_date: date = date(2026, 6, 30)

    def __post_init__(self) -> None:
        """Reject specs that cannot be generated."""
        for lo, hi in (self.series_per_study, self.instances_per_series):
            if not 1 <= lo <= hi:
                raise ValueError("ranges must satisfy 1 <= min <= max")
        if self.patients < 1 or self.studies < 0 or self.pixel_bytes < 64:
            raise ValueError("need patients >= 1, studies >= 0, pixel_bytes >= 64")
        if not (0.0 <= self.a_fraction <= 1.0 and 0.0 <= self.minor_fraction <= 1.0):
            raise ValueError("fractions must lie in [0, 1]")


@dataclass(frozen=True)
class InstanceInfo:
    """One written file; ``path`` is relative to the terminal root."""

    sop_instance_uid: str
    sop_class_uid: str
    path: Path
    size: int


@dataclass(frozen=True)
class SeriesInfo:
    """One series and its instances."""

    series_instance_uid: str
    modality: str
    instances: tuple[InstanceInfo, ...]


@dataclass(frozen=True)
class StudyInfo:
    """One study with its (synthetic) patient demographics."""

    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    accession: str
    study_instance_uid: str
    study_date: str
    modality: str
    description: str
    body_part: str
    series: tuple[SeriesInfo, ...]

    @property
    def flagged_a(self) -> bool:
        """True when the study is flagged for archiving (accession starts with A)."""
        return self.accession.startswith("A")

    @property
    def instances(self) -> list[InstanceInfo]:
        """All instances of all series, in series order."""
        return [inst for s in self.series for inst in s.instances]

    @property
    def age_at_study(self) -> int:
        """Patient age in whole years on the study date."""
        return _age(_parse_da(self.birth_date), _parse_da(self.study_date))


@dataclass(frozen=True)
class TerminalManifest:
    """What :func:`generate_terminal` wrote (only the studies of that call)."""

    root: Path
    studies: tuple[StudyInfo, ...]

    @property
    def a_studies(self) -> list[StudyInfo]:
        """Studies flagged for archiving."""
        return [s for s in self.studies if s.flagged_a]

    @property
    def b_studies(self) -> list[StudyInfo]:
        """Studies kept locally."""
        return [s for s in self.studies if not s.flagged_a]

    @property
    def total_bytes(self) -> int:
        """Sum of all file sizes."""
        return sum(i.size for s in self.studies for i in s.instances)

    def to_json(self) -> str:
        """Serialise to JSON (contains synthetic patient names; not for logs)."""
        return json.dumps(asdict(self), default=Path.as_posix, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TerminalManifest:
        """Inverse of :meth:`to_json`."""

        def series(se: dict[str, Any]) -> SeriesInfo:
            insts = (InstanceInfo(**{**i, "path": Path(i["path"])}) for i in se["instances"])
            return SeriesInfo(**{**se, "instances": tuple(insts)})

        doc = json.loads(text)
        studies = (
            StudyInfo(**{**s, "series": tuple(series(se) for se in s["series"])})
            for s in doc["studies"]
        )
        return cls(Path(doc["root"]), tuple(studies))


@dataclass(frozen=True)
class _Patient:
    patient_id: str
    name: str
    birth: date
    sex: str
    charset: str
    minor: bool


def _digest(seed: int, *parts: object) -> int:
    text = "|".join(str(p) for p in ("clinic-terminal", seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(_digest(seed, *parts))


def _uid(seed: int, *parts: object) -> str:
    """A deterministic ``2.25.`` UID (UUID v5 of the seed and parts)."""
    name = "|".join(str(p) for p in (seed, *parts))
    return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"


def _da(d: date) -> str:
    return d.strftime("%Y%m%d")


def _parse_da(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _patient_name(rng: random.Random, sex: str, kind: int) -> tuple[str, str]:
    """Return (PN value, SpecificCharacterSet); kind 0 ASCII, 1 accented, 2 Japanese."""
    g = "FM".index(sex)
    if kind == 2:
        fam_r, fam_k = rng.choice(_FAMILY_JA).split("=")
        giv_r, giv_k = rng.choice(_GIVEN_JA[g]).split("=")
        return f"{fam_r}^{giv_r}={fam_k}^{giv_k}", "ISO_IR 192"
    if kind == 1:
        fam = "-".join(rng.sample(_FAMILY_INTL, 2))
        return f"{fam}^{rng.choice(_GIVEN_INTL[g])}", "ISO_IR 192"
    return f"{'-'.join(rng.sample(_FAMILY, 2))}^{rng.choice(_GIVEN[g])}", "ISO_IR 100"


def _patients(spec: TerminalSpec) -> tuple[_Patient, ...]:
    """The spec's patient register (independent of which studies are generated)."""
    rng = _rng(spec.seed, "patients")
    minors = set(rng.sample(range(spec.patients), round(spec.minor_fraction * spec.patients)))
    phase, id_base = rng.randrange(4), rng.randrange(1_000_000, 5_000_000)
    seen: set[str] = set()
    out: list[_Patient] = []
    for i in range(spec.patients):
        prng = _rng(spec.seed, "patient", i)
        sex = "FFMM"[(i + phase + i // 4) % 4]  # balanced, also among intl names
        intl = (i + phase) % 4 == 0  # about one patient in four
        kind = (1 + (i // 4) % 2) if intl else 0
        for _ in range(50):  # prefer a family name no other patient has
            name, charset = _patient_name(prng, sex, kind)
            if name.split("^")[0] not in seen:
                break
        seen.add(name.split("^")[0])
        if i in minors:  # under 18 at any date in the history window, born before it
            days = prng.randint(_HISTORY_DAYS + 30, 17 * 365)
        else:  # at least 18 at the oldest possible study, at most 90 today
            days = prng.randint(_HISTORY_DAYS + 18 * 366, 89 * 365)
        birth = spec.reference_date - timedelta(days=days)
        out.append(_Patient(f"SYN{id_base + i:07d}", name, birth, sex, charset, i in minors))
    return tuple(out)


def _study_shape(spec: TerminalSpec, n: int) -> tuple[int, ...]:
    """Instance counts per series of study number ``n``."""
    rng = _rng(spec.seed, "shape", n)
    return tuple(
        rng.randint(*spec.instances_per_series) for _ in range(rng.randint(*spec.series_per_study))
    )


def _is_a(spec: TerminalSpec, n: int) -> bool:
    """Spread A studies evenly so every prefix of studies has ~a_fraction of them."""
    k = n + _digest(spec.seed, "a-phase") % 997
    return int((k + 1) * spec.a_fraction) > int(k * spec.a_fraction)


def _geometry(mod: _Modality, pixel_bytes: int) -> tuple[int, int]:
    """(rows, columns) so the pixel data is about ``pixel_bytes`` (columns even)."""
    pixels = pixel_bytes // (3 if mod.rgb else 2)
    cols = max(2, isqrt(pixels) & ~1)
    return max(1, pixels // cols), cols


def _pixel_length(mod: _Modality, pixel_bytes: int) -> int:
    rows, cols = _geometry(mod, pixel_bytes)
    return rows * cols * (3 if mod.rgb else 2)


def _image_module(ds: Dataset, mod: _Modality, rows: int, cols: int, data: bytes) -> None:
    ds.SamplesPerPixel = 3 if mod.rgb else 1
    ds.PhotometricInterpretation = "RGB" if mod.rgb else "MONOCHROME2"
    if mod.rgb:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 8 if mod.rgb else 16
    ds.BitsStored = mod.bits_stored
    ds.HighBit = mod.bits_stored - 1
    ds.PixelRepresentation = 0
    if not mod.rgb:
        ds.WindowCenter, ds.WindowWidth = 1 << (mod.bits_stored - 1), 1 << mod.bits_stored
    ds.PixelData = data  # OB for 8-bit, OW for 16-bit (set below)
    ds["PixelData"].VR = "OB" if mod.rgb else "OW"


def _pixels(rng: random.Random, mod: _Modality, length: int) -> bytes:
    raw = rng.randbytes(length)
    if mod.rgb:
        return raw
    buf = bytearray(raw)  # keep values within BitsStored (high byte of LE words)
    mask = _MASK_12 if mod.bits_stored == 12 else _MASK_14
    buf[1::2] = buf[1::2].translate(mask)
    return bytes(buf)


def _modality_extras(ds: Dataset, mod: _Modality, series: int, instance: int) -> None:
    if mod.code in ("DX", "MG"):
        ds.PresentationIntentType = "FOR PRESENTATION"
    if mod.code == "MG":
        ds.ImageLaterality = "L" if series < 3 else "R"
        ds.ViewPosition = "CC" if series != 2 else "MLO"
    if mod.code in ("CT", "MR"):
        ds.SliceThickness = "5"
        ds.PixelSpacing = [0.7, 0.7]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-180, -180, 5 * instance]
    if mod.code == "CT":
        ds.KVP, ds.RescaleIntercept, ds.RescaleSlope = "120", "-1024", "1"
    if mod.code == "MR":
        ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "SE", "NONE", "2D"
        ds.MagneticFieldStrength = "1.5"


def _write_instance(root: Path, rel: Path, ds: Dataset) -> int:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "SYNTERM_1"
    ds.file_meta = meta
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path.stat().st_size


def _generate_study(root: Path, spec: TerminalSpec, n: int, pat: _Patient) -> StudyInfo:
    """Write study number ``n`` (global index) and describe it."""
    seed, mod = spec.seed, _MODALITIES[n % len(_MODALITIES)]
    rng = _rng(seed, "study", n)
    body_part, description = rng.choice(mod.exams)
    study_day = spec.reference_date - timedelta(days=rng.randrange(_HISTORY_DAYS))
    study_time = f"{rng.randint(7, 18):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"
    acc_base = 1_000_000 + _digest(seed, "accession") % 4_000_000
    accession = f"{'A' if _is_a(spec, n) else 'B'}{acc_base + n:07d}"
    study_uid = _uid(seed, "study", n)
    rows, cols = _geometry(mod, spec.pixel_bytes)
    length = rows * cols * (3 if mod.rgb else 2)
    series_out: list[SeriesInfo] = []
    for s, count in enumerate(_study_shape(spec, n), start=1):
        series_uid, instances = _uid(seed, "series", n, s), list[InstanceInfo]()
        for k in range(1, count + 1):
            ds = Dataset()
            ds.SpecificCharacterSet = pat.charset
            ds.ImageType = ["ORIGINAL", "PRIMARY"]
            ds.SOPClassUID, ds.SOPInstanceUID = mod.sop_class_uid, _uid(seed, "sop", n, s, k)
            ds.StudyDate = ds.ContentDate = _da(study_day)
            ds.StudyTime = ds.ContentTime = study_time
            ds.AccessionNumber, ds.Modality = accession, mod.code
            ds.InstitutionName = "Synthetic Clinic"
            ds.ReferringPhysicianName = _REFERRERS[n % len(_REFERRERS)]
            ds.StudyDescription = description
            ds.SeriesDescription = mod.series[(s - 1) % len(mod.series)]
            ds.PatientName, ds.PatientID = pat.name, pat.patient_id
            ds.PatientBirthDate, ds.PatientSex = _da(pat.birth), pat.sex
            ds.PatientAge = f"{_age(pat.birth, study_day):03d}Y"
            ds.BodyPartExamined = body_part
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = str(n + 1), s, k
            _modality_extras(ds, mod, s, k)
            pixels = _pixels(_rng(seed, "pixels", n, s, k), mod, length)
            _image_module(ds, mod, rows, cols, pixels)
            rel = Path("DICOM", f"ST{n:05d}", f"SE{s:03d}", f"IM{k:05d}.dcm")
            size = _write_instance(root, rel, ds)
            instances.append(InstanceInfo(ds.SOPInstanceUID, mod.sop_class_uid, rel, size))
        series_out.append(SeriesInfo(series_uid, mod.code, tuple(instances)))
    demographics = (pat.patient_id, pat.name, _da(pat.birth), pat.sex, accession, study_uid)
    exam = (_da(study_day), mod.code, description, body_part)
    return StudyInfo(*demographics, *exam, tuple(series_out))


def generate_terminal(
    root: Path, spec: TerminalSpec = TerminalSpec(), *, start_index: int = 0
) -> TerminalManifest:
    """Write ``spec.studies`` studies numbered from ``start_index`` under ``root``.

    Study number ``n`` is fully determined by ``(spec, n)``, so a later call with
    ``start_index`` past the previous studies adds new studies (for the same
    patients) without UID, accession or path collisions.
    """
    if start_index < 0:
        raise ValueError("start_index must be >= 0")
    root = Path(root)
    patients = _patients(spec)
    studies: list[StudyInfo] = []
    women = [p for p in patients if p.sex == "F" and not p.minor]
    for n in range(start_index, start_index + spec.studies):
        pat = patients[(n + n // spec.patients) % spec.patients]  # rotate vs. modality
        if _MODALITIES[n % len(_MODALITIES)].code == "MG" and women:  # screening: adult women
            pat = women[n % len(women)]
        studies.append(_generate_study(root, spec, n, pat))
    return TerminalManifest(root, tuple(studies))


def spec_for_total_size(
    total_bytes: int, *, seed: int = 1, pixel_bytes: int = 512 * _KIB
) -> TerminalSpec:
    """A spec whose terminal is about ``total_bytes`` (about two studies per patient)."""
    if total_bytes <= 0:
        raise ValueError("total_bytes must be positive")
    probe = TerminalSpec(seed=seed, pixel_bytes=pixel_bytes)
    total, n = 0, 0
    while True:
        mod = _MODALITIES[n % len(_MODALITIES)]
        study = sum(_study_shape(probe, n)) * (_pixel_length(mod, pixel_bytes) + _HEADER_ESTIMATE)
        if total + study > total_bytes:
            n += 1 if (total + study - total_bytes) < (total_bytes - total) else 0
            break
        total, n = total + study, n + 1
    studies = max(1, n)
    return replace(probe, studies=studies, patients=max(1, round(studies / 2)))


def _parse_size(text: str) -> int:
    """Parse ``1.2G``, ``200M``, ``512K`` or plain bytes (binary multiples)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    power = " KMGT".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * _KIB**power)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints a one-line summary without patient data."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.clinic_terminal",
        description="Generate a synthetic clinic terminal.",
    )
    parser.add_argument("out", type=Path, help="terminal root folder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--patients", type=int)
    parser.add_argument("--studies", type=int)
    parser.add_argument("--pixel-bytes", type=_parse_size, help="per instance, e.g. 512K")
    parser.add_argument("--total-size", type=_parse_size, help="target size, e.g. 1.2G")
    parser.add_argument("--start-index", type=int, default=0, help="first study number")
    parser.add_argument("--manifest", type=Path, help="write the JSON manifest here")
    args = parser.parse_args(argv)
    if args.total_size is not None:
        if args.studies is not None:
            parser.error("--total-size and --studies are mutually exclusive")
        spec = spec_for_total_size(
            args.total_size, seed=args.seed, pixel_bytes=args.pixel_bytes or 512 * _KIB
        )
    else:
        spec = TerminalSpec(seed=args.seed)
        spec = replace(
            spec,
            studies=spec.studies if args.studies is None else args.studies,
            pixel_bytes=args.pixel_bytes or spec.pixel_bytes,
        )
    if args.patients is not None:
        spec = replace(spec, patients=args.patients)
    manifest = generate_terminal(args.out, spec, start_index=args.start_index)
    if args.manifest is not None:
        args.manifest.write_text(manifest.to_json(), encoding="utf-8")
    n_inst = sum(len(s.instances) for s in manifest.studies)
    print(
        f"{args.out}: {len(manifest.studies)} studies ({len(manifest.a_studies)} A), "
        f"{n_inst} instances, {manifest.total_bytes} bytes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
