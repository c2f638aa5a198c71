"""Deciding what a visit to a folder source takes: the walk, the fast path and selection.

For every file of the terminal: an unchanged file (same path, size and mtime as recorded by
an earlier visit) is decided from the journal without being opened; any other file's header is
parsed, the facility's rule applied, and the instance compared with what this device already
carried or the center confirmed (by keyed SOP Instance UID hash and content sha256). An
instance seen before with other bytes is taken again and flagged as changed.

A not-selected decision is only reused while the rule is the same (its digest is recorded),
so a changed rule or flag file re-examines the files it could now select.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from common.bundle.writer import hash_file
from common.dicomhdr import HeaderError, InstanceHeader, TagRef, read_header_values
from common.progress import NoProgress, Progress
from courier.core.journal import CARRIED, NOT_SELECTED, SKIPPED, FileState, Journal
from courier.core.selection import SelectionRule, header_values
from courier.core.source import SourceFile, walk_folder

# Per-object age overhead is about 200 bytes of header plus 16 bytes per 64 KiB chunk.
AGE_OVERHEAD = 512
_FLUSH_EVERY = 500
_READERS = 4  # threads reading headers ahead of the walk
_LOOKAHEAD = 64  # files walked ahead of the decisions

HeaderReader = Callable[..., tuple[InstanceHeader, dict[str, str]]]


@dataclass(frozen=True)
class Skipped:
    relpath: str
    reason: str


@dataclass(frozen=True)
class Candidate:
    file: SourceFile
    header: InstanceHeader
    file_key: str
    sop_key: str
    study_key: str
    changed: bool

    def file_state(self) -> FileState:
        """The fast-path record written once this candidate is durable on the drive."""
        return FileState(
            self.file.size, self.file.mtime_ns, CARRIED, None, self.study_key, self.sop_key
        )


@dataclass(frozen=True)
class StudyMatch:
    """One study as a DICOM node's C-FIND described it (values by TagRef key)."""

    values: dict[str, str]
    instances: int | None

    @property
    def study_uid(self) -> str:
        return self.values.get("StudyInstanceUID", "")


@dataclass(frozen=True)
class InstanceRef:
    sop_uid: str
    sop_class_uid: str


@dataclass(frozen=True)
class SeriesRef:
    series_uid: str
    instances: tuple[InstanceRef, ...]


@dataclass(frozen=True)
class NodeStudy:
    """A selected study on a DICOM node and what of it is still to be retrieved."""

    match: StudyMatch
    series: tuple[tuple[SeriesRef, bool], ...]  # (instances to get, whole series?)

    @property
    def missing(self) -> int:
        return sum(len(s.instances) for s, _ in self.series)


class StudyFinder(Protocol):
    """What planning needs from a DICOM node client (courier/core/node.py)."""

    def find_studies(self, tags: Sequence[TagRef]) -> list[StudyMatch]: ...

    def find_series(self, study_uid: str) -> list[SeriesRef]: ...


@dataclass
class Plan:
    """What a visit would take and why the rest is left."""

    rule: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    not_selected: int = 0
    already_carried: int = 0
    confirmed: int = 0
    duplicates: int = 0
    parsed: int = 0
    files_seen: int = 0
    dicom_bytes: int = 0
    study_bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    node_studies: list[NodeStudy] = field(default_factory=list)

    @property
    def largest_study(self) -> int:
        return max(self.study_bytes.values(), default=0)


class _StateBuffer:
    """Fast-path decisions, written in batches (each SQLite commit is an fsync)."""

    def __init__(self, journal: Journal, facility_id: str) -> None:
        self._journal = journal
        self._facility = facility_id
        self._rows: list[tuple[str, FileState]] = []

    def put(self, file_key: str, state: FileState) -> None:
        self._rows.append((file_key, state))
        if len(self._rows) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._journal.put_file_states(self._facility, self._rows)
            self._rows = []


def plan_folder(
    journal: Journal,
    facility_id: str,
    root: Path,
    rule: SelectionRule,
    progress: Progress | None = None,
    *,
    reader: HeaderReader | None = None,
) -> Plan:
    """Walk the terminal folder and decide, per file, whether it is taken and why not.

    *reader* parses one file's header (default :func:`read_header_values`). Headers are read
    by a few threads ahead of the walk (reading a cold file is mostly waiting for the disk);
    the decisions are taken here, in the walk's order.
    """
    progress = progress or NoProgress()
    reader = reader or read_header_values
    plan = Plan(rule=rule.describe())
    digest = rule.digest()
    buffer = _StateBuffer(journal, facility_id)
    first_seen: dict[str, Candidate] = {}
    tags = rule.tags()
    progress.phase("scan", None)
    pending: deque[tuple[SourceFile, str, _Job]] = deque()
    with ThreadPoolExecutor(_READERS, "scan-read") as pool:
        for file in walk_folder(root):
            plan.files_seen += 1
            progress.advance(1, nbytes=file.size)
            if file.error:
                pending.append((file, "", Skipped(file.relpath, file.error)))
                continue
            file_key = journal.file_key(facility_id, file.relpath)
            decided = _decided_before(journal, plan, facility_id, file, file_key, digest)
            job = pool.submit(_parse, reader, file.path, tags) if decided is False else decided
            pending.append((file, file_key, job))
            while len(pending) > _LOOKAHEAD or (pending and _ready(pending[0][2])):
                _decide(journal, plan, buffer, first_seen, rule, digest, *pending.popleft())
        while pending:
            _decide(journal, plan, buffer, first_seen, rule, digest, *pending.popleft())
    buffer.flush()
    return plan


@dataclass(frozen=True)
class _Parsed:
    header: InstanceHeader | None
    extra: dict[str, str]
    reason: str = ""


def _parse(reader: HeaderReader, path: Path, tags: Sequence[TagRef]) -> _Parsed:
    try:
        header, extra = reader(path, tags)
    except HeaderError as exc:
        return _Parsed(None, {}, exc.reason)
    return _Parsed(header, extra)


# What is known of a walked file: its header being read, or decided already (True), or to be
# listed as skipped.
_Job = Future[_Parsed] | Skipped | bool


def _ready(job: _Job) -> bool:
    return not isinstance(job, Future) or job.done()


def _decide(
    journal: Journal,
    plan: Plan,
    buffer: _StateBuffer,
    first_seen: dict[str, Candidate],
    rule: SelectionRule,
    digest: str,
    file: SourceFile,
    file_key: str,
    job: _Job,
) -> None:
    """Take the decision about one file of the walk, in walk order (so the skipped list keeps
    that order): *job* is its header being read, or a decision taken without parsing."""
    if isinstance(job, Skipped):
        plan.skipped.append(job)
        return
    if not isinstance(job, Future):
        return
    plan.parsed += 1
    parsed = job.result()
    if parsed.header is None:
        plan.skipped.append(Skipped(file.relpath, parsed.reason))
        buffer.put(file_key, FileState(file.size, file.mtime_ns, SKIPPED, parsed.reason))
        return
    header, extra = parsed.header, parsed.extra
    sop_key = journal.uid_key("sop", header.sop_instance_uid)
    study_key = journal.uid_key("study", header.study_instance_uid)
    plan.dicom_bytes += file.size
    plan.study_bytes[study_key] += file.size
    if not rule.selects({**header_values(header), **extra}):
        plan.not_selected += 1
        state = FileState(file.size, file.mtime_ns, NOT_SELECTED, None, study_key, sop_key, digest)
        buffer.put(file_key, state)
        return
    candidate = _candidate(journal, plan, file, header, file_key, sop_key, study_key)
    if candidate is None:
        state = FileState(file.size, file.mtime_ns, CARRIED, None, study_key, sop_key)
        buffer.put(file_key, state)
        return
    if _duplicate(first_seen, candidate):
        plan.duplicates += 1
        first = first_seen[candidate.sop_key].file.relpath
        plan.skipped.append(Skipped(file.relpath, f"the same instance as {first}: taken once"))
        return
    plan.candidates.append(candidate)


def _decided_before(
    journal: Journal,
    plan: Plan,
    facility_id: str,
    file: SourceFile,
    file_key: str,
    digest: str,
) -> Skipped | bool:
    """Account for an unchanged file from its recorded decision, without opening it: False
    when it must be parsed, else True, or what to list it as when it was skipped."""
    known = journal.file_state(facility_id, file_key)
    if known is None or (known.size, known.mtime_ns) != (file.size, file.mtime_ns):
        return False
    if known.state == SKIPPED:
        return Skipped(file.relpath, str(known.reason))
    if known.state == NOT_SELECTED and known.rule_digest != digest:
        return False
    plan.dicom_bytes += file.size
    if known.study_key:
        plan.study_bytes[known.study_key] += file.size
    if known.state == NOT_SELECTED:
        plan.not_selected += 1
    else:
        plan.already_carried += 1
        plan.confirmed += bool(known.sop_key and journal.is_confirmed(known.sop_key))
    return True


def _candidate(
    journal: Journal,
    plan: Plan,
    file: SourceFile,
    header: InstanceHeader,
    file_key: str,
    sop_key: str,
    study_key: str,
) -> Candidate | None:
    """The candidate for a selected file, or None when its exact bytes were carried before."""
    carried = journal.carried_sha256(sop_key)
    if not carried:
        return Candidate(file, header, file_key, sop_key, study_key, changed=False)
    if hash_file(file.path)[0] in carried:
        plan.already_carried += 1
        plan.confirmed += journal.is_confirmed(sop_key)
        return None
    return Candidate(file, header, file_key, sop_key, study_key, changed=True)


def _duplicate(first_seen: dict[str, Candidate], candidate: Candidate) -> bool:
    """True when another file of this walk holds the same instance with the same bytes."""
    first = first_seen.setdefault(candidate.sop_key, candidate)
    if first is candidate:
        return False
    return first.file.size == candidate.file.size and (
        hash_file(first.file.path)[0] == hash_file(candidate.file.path)[0]
    )


def plan_node(
    journal: Journal,
    finder: StudyFinder,
    rule: SelectionRule,
    progress: Progress | None = None,
) -> Plan:
    """Query a DICOM node and decide which instances of which studies are still to be taken.

    Counts are in instances where the node says how many a study has; instances this device
    carried or the center confirmed (by SOP Instance UID) are not taken again.
    """
    progress = progress or NoProgress()
    plan = Plan(rule=rule.describe())
    progress.phase("query", None)
    for match in finder.find_studies(rule.tags()):
        progress.advance(1)
        if not rule.selects(match.values):
            plan.not_selected += match.instances or 0
            continue
        wanted = []
        for series in finder.find_series(match.study_uid):
            plan.files_seen += len(series.instances)
            missing = []
            for ref in series.instances:
                sop_key = journal.uid_key("sop", ref.sop_uid)
                if journal.carried_sha256(sop_key):
                    plan.already_carried += 1
                    plan.confirmed += journal.is_confirmed(sop_key)
                else:
                    missing.append(ref)
            if missing:
                whole = len(missing) == len(series.instances)
                wanted.append((SeriesRef(series.series_uid, tuple(missing)), whole))
        if wanted:
            plan.node_studies.append(NodeStudy(match, tuple(wanted)))
    return plan
