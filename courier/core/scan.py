"""`courier scan`: what a pull would take, without copying anything.

The same planning as a pull (fast path included, so a scan also warms the journal's cache),
summarised per study: accession, date, modality, instances and size, with totals, what is
already carried or confirmed stored, what is not flagged and what cannot be read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.progress import NoProgress, Progress
from courier.core.capacity import Capacity
from courier.core.device import UnlockedDevice
from courier.core.facilities import Facility
from courier.core.journal import Journal
from courier.core.plan import Plan
from courier.core.source import NodeSource, parse_source
from courier.core.visitplan import load_rule, node_client, plan_visit


@dataclass(frozen=True)
class ScanStudy:
    accession: str
    study_date: str
    modality: str
    description: str
    instances: int
    bytes: int | None  # unknown for a DICOM node before retrieval
    changed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class ScanResult:
    facility_id: str
    source: str
    plan: Plan
    capacity: Capacity | None
    studies: list[ScanStudy] = field(default_factory=list)

    @property
    def instances(self) -> int:
        return sum(s.instances for s in self.studies)

    @property
    def bytes(self) -> int | None:
        sizes = [s.bytes for s in self.studies]
        return None if any(b is None for b in sizes) else sum(b or 0 for b in sizes)

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "facility_id": self.facility_id,
            "source": self.source,
            "rule": plan.rule,
            "studies": [s.to_dict() for s in self.studies],
            "totals": {
                "studies": len(self.studies),
                "instances": self.instances,
                "bytes": self.bytes,
            },
            "already_carried": plan.already_carried,
            "confirmed_stored": plan.confirmed,
            "not_selected": plan.not_selected,
            "skipped": [{"item": s.relpath, "reason": s.reason} for s in plan.skipped],
            "files_seen": plan.files_seen,
            "files_parsed": plan.parsed,
            "capacity": None if self.capacity is None else self.capacity.to_dict(),
        }


def scan(
    unlocked: UnlockedDevice,
    settings: Facility,
    now: datetime,
    progress: Progress | None = None,
) -> ScanResult:
    """Plan a visit of *settings*' clinic and summarise it per study."""
    del now  # a scan changes nothing that is dated; kept for the uniform core signature
    progress = progress or NoProgress()
    source = parse_source(settings.source, calling_aet=settings.calling_aet)
    client = node_client(source) if isinstance(source, NodeSource) else None
    with Journal.open(unlocked) as journal:
        rule = load_rule(settings, source)
        plan, capacity = plan_visit(journal, settings, source, rule, progress, client)
    result = ScanResult(settings.facility_id, source.describe(), plan, capacity)
    result.studies = _folder_studies(plan) + _node_studies(plan)
    result.studies.sort(key=lambda s: (s.study_date, s.accession))
    return result


def _folder_studies(plan: Plan) -> list[ScanStudy]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for cand in plan.candidates:
        groups[cand.header.study_instance_uid].append(cand)
    studies = []
    for cands in groups.values():
        first = cands[0].header
        modalities = sorted({c.header.modality for c in cands if c.header.modality})
        studies.append(
            ScanStudy(
                first.accession,
                first.study_date,
                "/".join(modalities),
                first.study_description,
                len(cands),
                sum(c.file.size for c in cands),
                sum(c.changed for c in cands),
            )
        )
    return studies


def _node_studies(plan: Plan) -> list[ScanStudy]:
    return [
        ScanStudy(
            s.match.values.get("AccessionNumber", ""),
            s.match.values.get("StudyDate", ""),
            s.match.values.get("ModalitiesInStudy", ""),
            s.match.values.get("StudyDescription", ""),
            s.missing,
            None,
        )
        for s in plan.node_studies
    ]
