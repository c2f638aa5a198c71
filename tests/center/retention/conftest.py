"""Fixtures for retention and expiry: a bare catalog with an object store, and a helper that
catalogues synthetic studies exactly as the importer does (one expiry_for call per instance).
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from center.core.catalog import open_catalog
from center.core.retention import expiry_for, import_facts
from center.core.store import ObjectStore
from common.bundle.reader import IndexEntry
from common.dicomhdr import InstanceHeader
from common.retention import parse_da
from common.sqlitedb import transaction
from tests.conftest import NOW

CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
MG_IMAGE = "1.2.840.10008.5.1.4.1.1.1.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
TODAY = NOW.date()


def dicom_bytes(header: InstanceHeader, extra: dict[str, str]) -> bytes:
    """A tiny synthetic Part 10 file carrying *header* (and *extra* keyword values)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = header.sop_class_uid
    meta.MediaStorageSOPInstanceUID = header.sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = header.sop_class_uid, header.sop_instance_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = (
        header.study_instance_uid,
        header.series_instance_uid,
    )
    ds.PatientID, ds.PatientName, ds.PatientBirthDate = (
        header.patient_id,
        "Test^Synthetic",
        header.birth_date,
    )
    ds.StudyDate, ds.Modality, ds.AccessionNumber = (
        header.study_date,
        header.modality,
        header.accession,
    )
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def instance_header(
    uid: str,
    n: int,
    *,
    study_date: str,
    series: str = "100",
    patient: str = "P1",
    birth: str = "19600101",
    accession: str = "",
    modality: str = "CR",
    sop_class: str = CR_IMAGE,
    body_part: str = "",
    description: str = "",
) -> InstanceHeader:
    """The header of instance *n* of the synthetic study *uid*."""
    return InstanceHeader(
        sop_instance_uid=f"{uid}.{n}",
        sop_class_uid=sop_class,
        study_instance_uid=uid,
        series_instance_uid=f"{uid}.{series}",
        transfer_syntax_uid=ExplicitVRLittleEndian,
        patient_id=patient,
        patient_name="Test^Synthetic",
        birth_date=birth,
        sex="O",
        accession=accession or f"A{uid.replace('.', '')}",
        study_id="1",
        study_date=study_date,
        study_time="",
        study_description=description,
        series_description="",
        modality=modality,
        body_part=body_part,
        institution="",
    )


@dataclass
class Clinic:
    """Catalogues synthetic studies the way center/core/importer.py does."""

    conn: sqlite3.Connection
    store: ObjectStore
    tmp: Path
    bundles: int = 0
    objects: dict[str, int] = field(default_factory=dict)

    def _bundle(self, facility: str, received: date) -> str:
        self.bundles += 1
        bundle_id = f"b{self.bundles:04d}"
        self.conn.execute(
            "INSERT OR IGNORE INTO devices (device_id, fingerprint, operator, signing_public, "
            "recipient, card, enrolled_at, enrolled_by, status) VALUES "
            "('dev-1', 'fp', 'op', x'00', 'age1x', x'00', ?, 'test', 'active')",
            (NOW.isoformat(),),
        )
        self.conn.execute(
            "INSERT OR IGNORE INTO facilities (facility_id, created) VALUES (?, ?)",
            (facility, NOW.isoformat()),
        )
        self.conn.execute(
            "INSERT INTO bundles (bundle_id, device_id, facility_id, created, imported_at, "
            "imported_by, status, object_count, stored_count, reception_operator, "
            "reception_date, reception) VALUES (?, 'dev-1', ?, ?, ?, 'Importer', 'imported', "
            "0, 0, 'courier', ?, '{}')",
            (
                bundle_id,
                facility,
                received.isoformat(),
                f"{received.isoformat()}T12:00:00+00:00",
                received.isoformat(),
            ),
        )
        return bundle_id

    def study(
        self,
        uid: str,
        *,
        study_date: str,
        received: date | None = None,
        facility: str = "clinic-1",
        patient: str = "P1",
        birth: str = "19600101",
        accession: str = "",
        modality: str = "CR",
        sop_class: str = CR_IMAGE,
        body_part: str = "",
        description: str = "",
        instances: int = 2,
        extra: dict[str, str] | None = None,
        shared_with: str | None = None,
        start: int = 0,
    ) -> str:
        """Catalogue *instances* instances of a study in a bundle of their own; the study uid.

        Call again with *start* past the earlier instances to add instances to the study."""
        if received is None:
            day = parse_da(study_date)
            received = TODAY if day is None else day + timedelta(days=3)
        with transaction(self.conn):
            bundle_id = self._bundle(facility, received)
            for n in range(start, start + instances):
                header = instance_header(
                    uid,
                    n,
                    study_date=study_date,
                    patient=patient,
                    birth=birth,
                    accession=accession,
                    modality=modality,
                    sop_class=sop_class,
                    body_part=body_part,
                    description=description,
                )
                entry = self.stored(header, n, extra, shared_with)
                self._catalog(facility, bundle_id, entry, received)
        return uid

    def stored(
        self,
        header: InstanceHeader,
        n: int,
        extra: dict[str, str] | None = None,
        shared_with: str | None = None,
    ) -> IndexEntry:
        """Instance *n* of a bundle as its index entry, its object written to the store
        (*shared_with*: the sha256 of an object already stored, the instance's bytes)."""
        data = dicom_bytes(header, extra or {})
        sha = hashlib.sha256(data).hexdigest() if shared_with is None else shared_with
        path = self.store.path(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(data)
        uid = header.study_instance_uid
        return IndexEntry(n + 1, f"data/{n}", sha, len(data), f"{uid}/{n}.dcm", header)

    def _catalog(self, facility: str, bundle_id: str, entry: IndexEntry, received: date) -> None:
        conn, h = self.conn, entry.header
        conn.execute(
            "INSERT INTO patients (facility_id, patient_id, patient_name, birth_date, sex) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (facility_id, patient_id) DO NOTHING",
            (facility, h.patient_id, h.patient_name, h.birth_date, h.sex),
        )
        patient_pk = conn.execute(
            "SELECT patient_pk FROM patients WHERE facility_id = ? AND patient_id = ?",
            (facility, h.patient_id),
        ).fetchone()[0]
        expiry = expiry_for(
            conn,
            import_facts(conn, self.store, entry, facility_id=facility, bundle_id=bundle_id),
            received,
        )
        conn.execute(
            "INSERT INTO studies (facility_id, patient_pk, study_instance_uid, accession, "
            "study_id, study_date, study_time, description, modalities, body_part, "
            "first_received, expiry, expiry_rule, expiry_anchor, study_date_flagged) "
            "VALUES (?, ?, ?, ?, '1', ?, '', ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (facility_id, study_instance_uid) DO NOTHING",
            (
                facility,
                patient_pk,
                h.study_instance_uid,
                h.accession,
                h.study_date,
                h.study_description,
                h.modality,
                h.body_part,
                received.isoformat(),
                expiry.expires.isoformat(),
                expiry.rule,
                expiry.anchor,
                int(expiry.study_date_flagged),
            ),
        )
        study_pk, modalities = conn.execute(
            "SELECT study_pk, modalities FROM studies "
            "WHERE facility_id = ? AND study_instance_uid = ?",
            (facility, h.study_instance_uid),
        ).fetchone()
        if h.modality and h.modality not in modalities.split("/"):
            merged = "/".join(sorted({*modalities.split("/"), h.modality} - {""}))
            conn.execute("UPDATE studies SET modalities = ? WHERE study_pk = ?", (merged, study_pk))
        conn.execute(
            "INSERT INTO series (study_pk, series_instance_uid, modality, description) "
            "VALUES (?, ?, ?, '') ON CONFLICT (study_pk, series_instance_uid) DO NOTHING",
            (study_pk, h.series_instance_uid, h.modality),
        )
        series_pk = conn.execute(
            "SELECT series_pk FROM series WHERE study_pk = ? AND series_instance_uid = ?",
            (study_pk, h.series_instance_uid),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO instances (series_pk, sop_instance_uid, sop_class_uid, "
            "transfer_syntax_uid, sha256, size, bundle_id, bundle_seq, source_relpath, received, "
            "conflict) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                series_pk,
                h.sop_instance_uid,
                h.sop_class_uid,
                h.transfer_syntax_uid,
                entry.sha256,
                entry.size,
                bundle_id,
                entry.seq,
                entry.source_relpath,
                received.isoformat(),
            ),
        )

    def expiry(self, uid: str) -> str:
        return str(
            self.conn.execute(
                "SELECT expiry FROM studies WHERE study_instance_uid = ?", (uid,)
            ).fetchone()[0]
        )

    def promise(self, uid: str, expiry: str, facility: str = "clinic-1") -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO receipt_promises VALUES (?, ?, ?, ?, ?)",
                (f"storage-{uid}", facility, uid, expiry, NOW.isoformat()),
            )

    def set_expiry(self, uid: str, expiry: str) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE studies SET expiry = ? WHERE study_instance_uid = ?", (expiry, uid)
            )


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_catalog(tmp_path / "catalog.sqlite")
    yield conn
    conn.close()


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "objects")


@pytest.fixture
def clinic(catalog: sqlite3.Connection, store: ObjectStore, tmp_path: Path) -> Clinic:
    return Clinic(catalog, store, tmp_path)
