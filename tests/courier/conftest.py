"""Fixtures and helpers of the courier tests."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import pytest

from common.bundle import format as fmt
from common.bundle.reader import decrypt_object, open_index
from common.bundle.verify import verify_bundle
from common.dicomhdr import read_header
from courier.core.facilities import Facility
from courier.core.selection import DEFAULT_RULE
from examples.clinic_terminal import TerminalSpec, generate_terminal
from tests.conftest import Terminal
from tests.peers.orthanc import orthanc_factory  # noqa: F401 - a fixture for the tests here

SMALL = TerminalSpec(
    seed=11,
    patients=2,
    studies=4,
    pixel_bytes=1024,
    series_per_study=(1, 1),
    instances_per_series=(1, 2),
)


@pytest.fixture
def small_terminal(tmp_path: Path) -> Terminal:
    """A few instances of a few KB: cheap to pull many times."""
    root = tmp_path / "small-terminal"
    return Terminal(root, generate_terminal(root, SMALL))


def settings(
    root: Path,
    facility: str = "clinic-1",
    *,
    receipts: Path | None = None,
    rule: str = DEFAULT_RULE,
    threshold: str | None = None,
) -> Facility:
    return Facility(
        facility,
        "Test Clinic",
        str(root),
        rule=rule,
        receipts=None if receipts is None else str(receipts),
        capacity_threshold=threshold,
    )


def a_instances(terminal: Terminal) -> dict[str, bytes]:
    """SOP Instance UID -> bytes of every A instance of the terminal."""
    return {
        inst.sop_instance_uid: (terminal.root / inst.path).read_bytes()
        for study in terminal.manifest.a_studies
        for inst in study.instances
    }


def sealed_bundles(drive_root: Path) -> list[Path]:
    folder = drive_root / fmt.BUNDLES_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / fmt.SIGNATURE).exists())


def decrypt_bundle(bundle: Path, identity: str) -> dict[str, list[bytes]]:
    """Every object of a verified bundle, decrypted with the center key, by SOP Instance UID."""
    report = verify_bundle(bundle)
    assert report.valid, [d.describe() for d in report.defects]
    assert report.info is not None
    found: dict[str, list[bytes]] = defaultdict(list)
    with open_index(bundle, identity, report.info, spool_dir=bundle.parent) as index:
        for entry in index:
            sink = io.BytesIO()
            assert decrypt_object(bundle, entry, identity, sink) == entry.sha256
            data = sink.getvalue()
            assert read_header(io.BytesIO(data)).sop_instance_uid == entry.header.sop_instance_uid
            found[entry.header.sop_instance_uid].append(data)
    return dict(found)


def put_in_outbox(
    drive_root: Path,
    facility_id: str,
    document: dict[str, object],
    signing_seed: bytes,
    recipients: list[str],
) -> list[Path]:
    """Write a signed document into the drive's outbox as the center does (contract C1)."""
    from common.crypto import encrypt_bytes
    from common.fsio import atomic_write
    from common.receipts import receipt_bytes

    folder = drive_root / fmt.OUTBOX_DIR / facility_id
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, data in receipt_bytes(document, signing_seed, title="Storage receipt").items():
        path = folder / f"{document['receipt_id']}{suffix}.age"
        atomic_write(path, encrypt_bytes(data, recipients))
        written.append(path)
    return written


def storage_receipt(
    facility_id: str, bundle_id: str, instances: dict[str, bytes], issuer_public: bytes
) -> dict[str, object]:
    """A storage receipt (contract C3) listing *instances* (SOP UID -> bytes) in one study."""
    import hashlib

    from common.receipts import issuer

    return {
        "kind": "storage-receipt",
        "version": 1,
        "receipt_id": f"storage-{bundle_id}",
        "issued": "2026-11-23T10:00:00+00:00",
        "facility_id": facility_id,
        "bundle_id": bundle_id,
        "issuer": issuer("center", "Test Center", issuer_public),
        "studies": [
            {
                "study_instance_uid": "1.2.3",
                "accession": "A1",
                "study_date": "20260101",
                "modality": "CR",
                "description": "",
                "instance_count": len(instances),
                "instances": [
                    {"sop_instance_uid": uid, "sha256": hashlib.sha256(data).hexdigest()}
                    for uid, data in instances.items()
                ],
                "bytes": sum(len(d) for d in instances.values()),
                "instance_list_sha256": "0" * 64,
                "expiry": "2036-01-01",
            }
        ],
        "totals": {"studies": 1, "instances": len(instances), "bytes": 0},
        "not_stored": [],
    }
