"""What `center import` did: one outcome per bundle, and the drive-level results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from center.core.missing import KnownBundle
from center.core.outbox import ConfirmationOutcome, PushResult
from common.errors import ArchiveError

IMPORTED, PARTIAL, ALREADY, UNSEALED, REFUSED = (
    "imported",
    "partial",
    "already-imported",
    "unsealed",
    "refused",
)


@dataclass
class BundleOutcome:
    bundle_id: str
    status: str
    facility_id: str = ""
    device_id: str = ""
    objects: int = 0
    stored: int = 0
    new_instances: int = 0
    quarantined: int = 0
    studies: int = 0
    reason: str = ""
    error_ref: str = ""
    notes: list[str] = field(default_factory=list)
    receipt_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ImportReport:
    drive: Path
    outcomes: list[BundleOutcome] = field(default_factory=list)
    confirmations: list[ConfirmationOutcome] = field(default_factory=list)
    receipts: list[Path] = field(default_factory=list)
    push: PushResult | None = None
    outbox_error: ArchiveError | None = None
    # bundles the couriers' logs name that never arrived (center bundles missing)
    missing: list[KnownBundle] = field(default_factory=list)

    def with_status(self, status: str) -> list[BundleOutcome]:
        return [o for o in self.outcomes if o.status == status]
