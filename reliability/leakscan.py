"""Looking for patient data and key material where there must be none.

Needles are built from what the synthetic terminal generator wrote (its manifest): patient
names whole and in parts, in every encoding a program might use to write them (UTF-8, Latin-1,
UTF-16, the Japanese legacy encodings, JSON and accent-folded ASCII), patient IDs, birth dates,
accession numbers and UIDs; and from the run's secrets: age identities, Ed25519 seeds (raw, hex,
base64) and passphrases. ASCII needles are matched without regard to case.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from examples.clinic_terminal import TerminalManifest

ENCODINGS = ("utf-8", "latin-1", "utf-16-le", "utf-16-be", "shift_jis", "euc_jp", "iso2022_jp")
MIN_PART = 6  # shorter needles (in bytes) would match random ciphertext by chance
SECRET_KINDS = ("age-secret-key", "age-identity", "signing-seed", "passphrase")
AGE_SECRET_PREFIX = b"age-secret-key-1"  # lower-cased: matched case-insensitively


@dataclass(frozen=True)
class Needle:
    kind: str  # "patient-name", "patient-id", "birth-date", "accession", "uid", "key", ...
    data: bytes  # lower-cased when ASCII


@dataclass
class Needles:
    items: list[Needle] = field(default_factory=list)

    def add(self, kind: str, value: str) -> None:
        for variant in _variants(value):
            for codec in ENCODINGS:
                with contextlib.suppress(UnicodeError):
                    data = variant.encode(codec)
                    if len(data) >= MIN_PART:
                        self.items.append(Needle(kind, _fold(data)))

    def add_bytes(self, kind: str, data: bytes) -> None:
        self.items.append(Needle(kind, _fold(data)))

    def unique(self) -> Needles:
        seen: dict[bytes, Needle] = {}
        for needle in self.items:
            seen.setdefault(needle.data, needle)
        return Needles(list(seen.values()))

    def secrets(self) -> Needles:
        """Only the key material and passphrases (for output that may show patient data)."""
        return Needles([n for n in self.items if n.kind in SECRET_KINDS])

    def find(self, data: bytes) -> list[Needle]:
        """The needles present in *data*."""
        folded = _fold(data)
        return [n for n in self.items if n.data in folded]


def _fold(data: bytes) -> bytes:
    return data.lower()


def _variants(value: str) -> set[str]:
    """The forms a value may take in output: as is, JSON-escaped, accent-folded."""
    folded = "".join(
        c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)
    )
    return {value, json.dumps(value)[1:-1], folded, json.dumps(value, ensure_ascii=False)[1:-1]}


def name_parts(name: str) -> set[str]:
    """A DICOM person name and its components (family, given ...; each PN group)."""
    parts = {name}
    for group in name.split("="):
        parts.add(group)
        for component in group.split("^"):
            parts.add(component)
            parts.update(re.split(r"[-\s]", component))
    return {p for p in parts if p}


def patient_needles(manifests: Iterable[TerminalManifest]) -> Needles:
    needles = Needles()
    for manifest in manifests:
        for study in manifest.studies:
            for part in name_parts(study.patient_name):
                needles.add("patient-name", part)
            needles.add("patient-name", study.patient_name.replace("^", " "))
            needles.add("patient-id", study.patient_id)
            needles.add("birth-date", study.birth_date)
            needles.add(
                "birth-date",
                f"{study.birth_date[:4]}-{study.birth_date[4:6]}-{study.birth_date[6:]}",
            )
            needles.add("accession", study.accession)
            needles.add("uid", study.study_instance_uid)
            for series in study.series:
                needles.add("uid", series.series_instance_uid)
                for instance in series.instances:
                    needles.add("uid", instance.sop_instance_uid)
    return needles.unique()


def secret_needles(
    *, identities: Iterable[str], seeds: Iterable[bytes], passphrases: Iterable[str]
) -> Needles:
    needles = Needles()
    needles.add_bytes("age-secret-key", AGE_SECRET_PREFIX)
    for identity in identities:
        needles.add_bytes("age-identity", identity.encode())
    for seed in seeds:
        needles.add_bytes("signing-seed", seed)
        needles.add_bytes("signing-seed", seed.hex().encode())
        needles.add_bytes("signing-seed", base64.b64encode(seed).rstrip(b"="))
        needles.add_bytes("signing-seed", base64.urlsafe_b64encode(seed).rstrip(b"="))
    for passphrase in passphrases:
        needles.add_bytes("passphrase", passphrase.encode())
    return needles.unique()


@dataclass(frozen=True)
class Leak:
    where: str
    kind: str

    def describe(self) -> str:
        return f"{self.kind} in {self.where}"


def scan_bytes(where: str, data: bytes, needles: Needles) -> list[Leak]:
    return sorted({Leak(where, n.kind) for n in needles.find(data)}, key=lambda x: x.kind)


def scan_tree(root: Path, needles: Needles, *, label: str = "") -> list[Leak]:
    """Every byte of every file (and every file name) under *root*."""
    leaks: list[Leak] = []
    if not root.exists():
        return leaks
    for path in sorted(root.rglob("*")):
        where = f"{label or root.name}/{path.relative_to(root)}"
        leaks += scan_bytes(f"{where} (name)", path.name.encode(), needles)
        if path.is_file() and not path.is_symlink():
            leaks += scan_bytes(where, path.read_bytes(), needles)
    return leaks
