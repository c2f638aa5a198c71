"""Planning a visit: the facility's rule, the plan of its terminal and the terminal's capacity.

Shared by `courier scan` and `courier pull`; kept apart from the pull (which imports the copy,
sealing and delivery machinery) so that a scan loads only what planning needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import SourceError
from common.progress import Progress
from courier.core.capacity import Capacity, assess, measure_disk, parse_threshold
from courier.core.facilities import Facility
from courier.core.journal import Journal
from courier.core.plan import Plan, plan_folder, plan_node
from courier.core.selection import SelectionRule, build_rule, parse_rule
from courier.core.source import FolderSource, NodeSource

if TYPE_CHECKING:
    from courier.core.node import NodeClient


def load_rule(settings: Facility, source: FolderSource | NodeSource) -> SelectionRule:
    """The facility's rule; a flag file is read now (relative to a folder source)."""
    spec = parse_rule(settings.rule, field=f"facility {settings.facility_id}: rule")
    if spec.flag_file is None:
        return build_rule(spec)
    path = Path(spec.flag_file).expanduser()
    if not path.is_absolute() and isinstance(source, FolderSource):
        path = source.root / path
    try:
        text: str | None = path.read_text("utf-8")
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read the flag file {path} ({exc})") from exc
    return build_rule(spec, text)


def plan_visit(
    journal: Journal,
    settings: Facility,
    source: FolderSource | NodeSource,
    rule: SelectionRule,
    progress: Progress,
    client: NodeClient | None = None,
    *,
    keep_snapshot: bool = True,
) -> tuple[Plan, Capacity | None]:
    """Plan the visit and, for a folder, assess the terminal's capacity (*keep_snapshot*:
    see :func:`courier.core.plan.plan_folder`)."""
    if client is not None:
        return plan_node(journal, client, rule, progress), None
    if not isinstance(source, FolderSource):
        raise ValueError("a DICOM node source needs its client")
    plan = plan_folder(
        journal, settings.facility_id, source.root, rule, progress, keep_snapshot=keep_snapshot
    )
    journal.note_largest_study(settings.facility_id, plan.largest_study)
    configured = (
        parse_threshold(settings.capacity_threshold) if settings.capacity_threshold else None
    )
    capacity = assess(
        measure_disk(source.root),
        plan.dicom_bytes,
        journal.largest_study(settings.facility_id),
        configured,
    )
    return plan, capacity


def node_client(source: NodeSource) -> NodeClient:
    from courier.core.node import NodeClient  # pynetdicom only when a node is visited

    return NodeClient(source)
