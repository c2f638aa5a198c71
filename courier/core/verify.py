"""`courier verify DRIVE`: check every bundle on a drive without any secret key.

Signature against the device key named in each bundle, tag manifest, then every payload file
against the manifest (common/bundle/verify.py). When this laptop has a device, bundles signed
by it are marked as such; others are still checked for integrity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.bundle import format as fmt
from common.bundle.verify import VerifyReport, verify_bundle
from common.crypto import fingerprint
from common.errors import NoBundles
from courier.core.deliver import outbox_waiting


@dataclass
class DriveReport:
    root: Path
    bundles: list[VerifyReport] = field(default_factory=list)
    own_fingerprint: str | None = None
    outbox: dict[str, int] = field(default_factory=dict)  # documents waiting, per facility

    @property
    def valid(self) -> bool:
        return all(r.valid for r in self.bundles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drive": str(self.root),
            "valid": self.valid,
            "outbox": self.outbox,
            "bundles": [
                {
                    "bundle_id": r.bundle_id,
                    "facility_id": r.info.facility_id if r.info else None,
                    "device_id": r.info.device_id if r.info else None,
                    "signed_by_this_device": bool(
                        r.info and r.info.device_fingerprint == self.own_fingerprint
                    ),
                    "objects": r.info.object_count if r.info else None,
                    "sealed": r.sealed,
                    "valid": r.valid,
                    "defects": [
                        {"kind": d.kind, "path": d.path, "detail": d.detail} for d in r.defects
                    ],
                }
                for r in self.bundles
            ],
        }


def verify_drive(
    root: Path,
    *,
    own_public: bytes | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> DriveReport:
    """Verify every bundle folder under ``<root>/bundles``."""
    bundles_root = root / fmt.BUNDLES_DIR
    folders = (
        sorted(p for p in bundles_root.iterdir() if p.is_dir()) if bundles_root.is_dir() else []
    )
    if not folders:
        raise NoBundles(f"{root} holds no bundle", hint="Check that this is the courier drive.")
    own = None if own_public is None else fingerprint(own_public)
    report = DriveReport(root, own_fingerprint=own, outbox=outbox_waiting(root))
    for folder in folders:
        report.bundles.append(verify_bundle(folder, on_object=on_bytes))
    return report
