"""Deciding what a visit to a folder source takes: the walk, the fast path and selection.

For every file of the terminal: an unchanged file (same path, size and mtime as recorded by
an earlier visit) is decided from the journal without being opened; any other file's header is
parsed, the facility's rule applied, and the instance compared with what this device already
carried or the center confirmed (by keyed SOP Instance UID hash and content sha256). An
instance seen before with other bytes is taken again and flagged as changed.

A not-selected decision is only reused while the rule is the same (its digest is recorded),
so a changed rule or flag file re-examines the files it could now select.

The journal's answers come, a chunk of files at a time, from the last walk's snapshot when it
holds every file of the chunk unchanged and the journal has not changed since (a re-scan of an
unchanged terminal then makes no lookup at all), else from the journal itself
(courier/core/walksnapshot.py). Either way the decisions are the same.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import NamedTuple, Protocol

from common.bundle.writer import hash_file
from common.dicomhdr import HeaderError, InstanceHeader, TagRef, read_header_values
from common.errors import KeyFileError
from common.heap import collector_paused
from common.progress import NoProgress, Progress
from courier.core import walksnapshot
from courier.core.journal import CARRIED, NOT_SELECTED, SELECTED, SKIPPED, FileState, Journal
from courier.core.selection import SelectionRule, header_values
from courier.core.source import SourceFile, walk_folder
from courier.core.walksnapshot import CARRIED as CARRIED_FLAG
from courier.core.walksnapshot import CONFIRMED, FILE_KEY, MTIME, OPENED, SIZE, SOP_KEY, Recorder

# Per-object age overhead is about 200 bytes of header plus 16 bytes per 64 KiB chunk.
AGE_OVERHEAD = 512
_FLUSH_EVERY = 500
_READERS = 4  # threads reading headers ahead of the walk
_LOOKAHEAD = 64  # files walked ahead of the decisions
_CHUNK = 256  # files whose recorded decisions are looked up in one query
# A kept header is a list of values in this order (checked when read back).
_HEADER_FIELDS = ",".join(f.name for f in fields(InstanceHeader))

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
    """Fast-path decisions, written in batches (each SQLite commit is an fsync), and kept for
    the next walk's snapshot."""

    def __init__(self, journal: Journal, facility_id: str, recorder: Recorder) -> None:
        self._journal = journal
        self._facility = facility_id
        self._recorder = recorder
        self._rows: list[tuple[str, FileState]] = []

    def put(
        self,
        file: SourceFile,
        file_key: str,
        state: FileState,
        opened: _Opened | None = None,
        *,
        carried: bool = False,
        confirmed: bool = False,
    ) -> None:
        """Record *state* for *file*; *opened* (header values and rule values), *carried* and
        *confirmed* are what a later walk will find of it (courier/core/walksnapshot.py)."""
        self._recorder.stale = True
        self._recorder.keep(
            file.relpath, file_key, state, opened, carried=carried, confirmed=confirmed
        )
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
    keep_snapshot: bool = True,
) -> Plan:
    """Walk the terminal folder and decide, per file, whether it is taken and why not.

    The walk reads the last walk's snapshot; it leaves one of its own unless *keep_snapshot*
    is false (a pull: its own writes would end it at once).

    *reader* parses one file's header (default :func:`read_header_values`). Headers are read
    by a few threads ahead of the walk (reading a cold file is mostly waiting for the disk);
    the decisions are taken here, in the walk's order.
    """
    progress = progress or NoProgress()
    reader = reader or read_header_values
    plan = Plan(rule=rule.describe())
    digest = rule.digest()
    first_seen: dict[str, Candidate] = {}
    tags = rule.tags()
    progress.phase("scan", None)
    pending: deque[tuple[SourceFile, str, _Job]] = deque()
    with collector_paused(), ThreadPoolExecutor(_READERS, "scan-read") as pool:
        known = _Known(journal, facility_id, digest, keep_snapshot)  # many objects, no cycles
        buffer = _StateBuffer(journal, facility_id, known.recorder)
        for chunk in _chunks(walk_folder(root), _CHUNK):
            answers = known.look_up(chunk)
            for file, (file_key, state) in zip(chunk, answers, strict=True):
                plan.files_seen += 1
                progress.advance(1, nbytes=file.size)
                if file.error:
                    pending.append((file, "", Skipped(file.relpath, file.error)))
                    continue
                decided = _decided_before(known, plan, file, file_key, state)
                if decided is True:  # accounted for already: nothing to keep in walk order
                    continue
                if decided is False:
                    decided = pool.submit(_parse, reader, file.path, tags)
                elif not pending:  # known without parsing, and nothing before it waits
                    _decide(known, plan, buffer, first_seen, rule, file, file_key, decided)
                    continue
                pending.append((file, file_key, decided))
                while len(pending) > _LOOKAHEAD or (pending and _ready(pending[0][2])):
                    _decide(known, plan, buffer, first_seen, rule, *pending.popleft())
        while pending:
            _decide(known, plan, buffer, first_seen, rule, *pending.popleft())
    buffer.flush()
    if known.recorder.stale:  # after the walk's own writes, which ended the snapshot it read
        walksnapshot.save(journal, facility_id, _HEADER_FIELDS, known.recorder)
    return plan


class _Parsed(NamedTuple):
    """A file's header and rule values, read or kept (a named tuple: a re-scan makes one per
    selected file)."""

    header: InstanceHeader | None
    extra: dict[str, str]
    reason: str = ""
    selected: bool = False  # already known selected under this rule (from the journal)
    keys: tuple[str, str] | None = None  # (sop key, study key) when known
    carried: bool = True  # False when known not carried nor confirmed (no need to ask)


# A selected file's header values (in InstanceHeader's field order) and rule values.
_Opened = tuple[tuple[str, ...], dict[str, str]]


class _Known:
    """What the journal knows, looked up once per chunk of the walk rather than once per file:
    from the last walk's snapshot when it answers for the whole chunk, else from the journal."""

    def __init__(self, journal: Journal, facility_id: str, digest: str, keeping: bool) -> None:
        self.journal, self.facility_id, self.digest = journal, facility_id, digest
        self.values: dict[str, str] = {}  # header values seen, each kept once
        self.carried: set[str] = set()  # of the current chunk's selected files
        self.confirmed: set[str] = set()  # of the current chunk's carried files
        self.opened: dict[str, _Opened] = {}  # the current chunk's selected files, by file key
        self.snapshot = walksnapshot.load(journal, facility_id, _HEADER_FIELDS)
        self.recorder = Recorder(stale=not self.snapshot, keeping=keeping)

    def look_up(self, chunk: list[SourceFile]) -> list[tuple[str, FileState | None]]:
        """Each file's key and recorded decision, and which of the chunk's instances are
        carried or confirmed: a few queries per chunk, and memory for one chunk only, however
        long the journal's history; none when the snapshot holds every file of the chunk with
        its size and mtime."""
        from_snapshot = self._from_snapshot(chunk)
        if from_snapshot is not None:
            return from_snapshot
        self.recorder.stale = True
        keys = [self.journal.file_key(self.facility_id, file.relpath) for file in chunk]
        states = self.journal.file_states(self.facility_id, keys)
        selected, carried = [], []
        for recorded in states.values():
            if recorded.sop_key is not None:
                if recorded.state == SELECTED:
                    selected.append(recorded.sop_key)
                elif recorded.state == CARRIED:
                    carried.append(recorded.sop_key)
        self.carried = self.journal.carried_among(selected) if selected else set()
        self.confirmed = self.journal.confirmed_among(carried) if carried else set()
        self.opened = {}
        answers: list[tuple[str, FileState | None]] = []
        for file, key in zip(chunk, keys, strict=True):
            state = states.get(key)
            answers.append((key, state))
            # As the journal holds it; a decision taken now replaces it, and so does a kept
            # header opened (with whether its instance is carried: see selected()).
            if state is not None:
                confirmed = state.state == CARRIED and state.sop_key in self.confirmed
                self.recorder.keep(file.relpath, key, state, confirmed=confirmed)
        return answers

    def _from_snapshot(self, chunk: list[SourceFile]) -> list[tuple[str, FileState | None]] | None:
        """The chunk's answers from the snapshot, or None when it lacks a file of the chunk or
        holds one with another size or mtime (then the journal is asked for the whole chunk)."""
        if not self.snapshot:
            return None
        answers: list[tuple[str, FileState | None]] = []
        kept: list[tuple[str, walksnapshot.Record]] = []
        carried, confirmed, opened = set(), set(), {}
        for file in chunk:
            if file.error:  # listed as skipped, never looked up
                answers.append(("", None))
                continue
            record = self.snapshot.get(file.relpath)
            if record is None or (record[SIZE], record[MTIME]) != (file.size, file.mtime_ns):
                return None
            kept.append((file.relpath, record))
            answers.append((record[FILE_KEY], walksnapshot.state_of(record)))
            if record[CARRIED_FLAG]:
                carried.add(record[SOP_KEY])
            if record[CONFIRMED]:
                confirmed.add(record[SOP_KEY])
            if record[OPENED] is not None:
                opened[record[FILE_KEY]] = record[OPENED]
        self.carried, self.confirmed, self.opened = carried, confirmed, opened
        self.recorder.keep_records(kept)
        return answers

    def selected(self, file: SourceFile, file_key: str, state: FileState) -> _Parsed | None:
        """A selected file's header from the snapshot or the journal (None if it does not
        open: parse)."""
        if state.sop_key is None or state.study_key is None:
            return None
        keys = (state.sop_key, state.study_key)
        carried = state.sop_key in self.carried
        kept = self.opened.get(file_key)
        if kept is not None:  # its values already shared within the snapshot
            header = InstanceHeader.from_values(kept[0])
            return _Parsed(header, kept[1], selected=True, keys=keys, carried=carried)
        opened = self._open(file_key, state)
        if opened is None:
            return None
        header = self.compact(opened[0])
        shared = (tuple(vars(header).values()), opened[1])  # for the next walk's snapshot
        self.recorder.keep(file.relpath, file_key, state, shared, carried=carried)
        return _Parsed(header, opened[1], selected=True, keys=keys, carried=carried)

    def _open(self, file_key: str, state: FileState) -> _Opened | None:
        if state.header is None:
            return None
        try:
            fields, values, extra = self.journal.open_header(
                self.facility_id, file_key, state.header
            )
        except (KeyFileError, ValueError):
            return None
        if fields != _HEADER_FIELDS:  # written by a version with other header fields
            return None
        return tuple(values), extra

    def compact(self, values: Sequence[str]) -> InstanceHeader:
        """The header of *values* (in field order), each shared with the plan's other headers:
        a plan holds every candidate's header until the copy, and all but the SOP Instance UID
        repeat within a study (a plan of 100,000 instances would otherwise hold 100,000
        copies)."""
        return InstanceHeader.from_values(map(self.values.setdefault, values, values))

    def seal(self, file_key: str, header: InstanceHeader, extra: dict[str, str]) -> bytes:
        doc = [_HEADER_FIELDS, list(vars(header).values()), extra]
        return self.journal.seal_header(self.facility_id, file_key, doc)


def _parse(reader: HeaderReader, path: Path, tags: Sequence[TagRef]) -> _Parsed:
    try:
        header, extra = reader(path, tags)
    except HeaderError as exc:
        return _Parsed(None, {}, exc.reason)
    return _Parsed(header, extra)


# What is known of a walked file whose decision is taken in walk order: its header being read,
# or known from the journal (selected before), or to be listed as skipped.
_Job = Future[_Parsed] | _Parsed | Skipped


def _ready(job: _Job) -> bool:
    return not isinstance(job, Future) or job.done()


def _decide(
    known: _Known,
    plan: Plan,
    buffer: _StateBuffer,
    first_seen: dict[str, Candidate],
    rule: SelectionRule,
    file: SourceFile,
    file_key: str,
    job: _Job,
) -> None:
    """Take the decision about one file of the walk, in walk order (so the skipped list keeps
    that order): *job* is its header being read, or what is known without parsing."""
    if isinstance(job, Skipped):
        plan.skipped.append(job)
        return
    if isinstance(job, Future):
        plan.parsed += 1
        job = job.result()
    if job.header is None:
        plan.skipped.append(Skipped(file.relpath, job.reason))
        buffer.put(file, file_key, FileState(file.size, file.mtime_ns, SKIPPED, job.reason))
        return
    header, extra = job.header, job.extra
    if job.keys is not None:
        sop_key, study_key = job.keys
    else:
        sop_key = known.journal.uid_key("sop", header.sop_instance_uid)
        study_key = known.journal.uid_key("study", header.study_instance_uid)
    plan.dicom_bytes += file.size
    plan.study_bytes[study_key] += file.size
    if not job.selected and not rule.selects({**header_values(header), **extra}):
        plan.not_selected += 1
        state = FileState(
            file.size, file.mtime_ns, NOT_SELECTED, None, study_key, sop_key, known.digest
        )
        buffer.put(file, file_key, state)
        return
    if not job.selected:  # a kept header was compacted as it was opened
        header = known.compact(tuple(vars(header).values()))
    candidate = _candidate(known, file, header, file_key, sop_key, study_key, job.carried)
    if not isinstance(candidate, Candidate):  # these exact bytes were carried before
        plan.already_carried += 1
        plan.confirmed += candidate
        state = FileState(file.size, file.mtime_ns, CARRIED, None, study_key, sop_key)
        buffer.put(file, file_key, state, confirmed=candidate)
        return
    if _duplicate(first_seen, candidate):
        plan.duplicates += 1
        first = first_seen[candidate.sop_key].file.relpath
        plan.skipped.append(Skipped(file.relpath, f"the same instance as {first}: taken once"))
        return
    plan.candidates.append(candidate)
    if not job.selected:  # keep the header: the pull after this scan need not parse again
        sealed = known.seal(file_key, header, extra)
        state = FileState(
            file.size, file.mtime_ns, SELECTED, None, study_key, sop_key, known.digest, sealed
        )
        # Carried: this instance was carried before, with other bytes (changed).
        opened = (tuple(vars(header).values()), extra)
        buffer.put(file, file_key, state, opened, carried=candidate.changed)


def _chunks(files: Iterator[SourceFile], size: int) -> Iterator[list[SourceFile]]:
    chunk: list[SourceFile] = []
    for file in files:
        chunk.append(file)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _decided_before(
    known: _Known, plan: Plan, file: SourceFile, file_key: str, state: FileState | None
) -> _Job | bool:
    """Account for an unchanged file from its recorded decision (*state*), without opening
    it: False when it must be parsed, True when it is accounted for (not selected, or
    carried), else what is known of it."""
    if state is None or (state.size, state.mtime_ns) != (file.size, file.mtime_ns):
        return False
    if state.state == SKIPPED:
        return Skipped(file.relpath, str(state.reason))
    if state.state in (NOT_SELECTED, SELECTED) and state.rule_digest != known.digest:
        return False
    if state.state == SELECTED:
        return known.selected(file, file_key, state) or False
    plan.dicom_bytes += file.size
    if state.study_key:
        plan.study_bytes[state.study_key] += file.size
    if state.state == NOT_SELECTED:
        plan.not_selected += 1
    else:
        plan.already_carried += 1
        plan.confirmed += bool(state.sop_key and state.sop_key in known.confirmed)
    return True


def _candidate(
    known: _Known,
    file: SourceFile,
    header: InstanceHeader,
    file_key: str,
    sop_key: str,
    study_key: str,
    maybe_carried: bool,
) -> Candidate | bool:
    """The candidate for a selected file; when its exact bytes were carried before, whether
    the center confirmed them stored."""
    carried = known.journal.carried_sha256(sop_key) if maybe_carried else set()
    if not carried:
        return Candidate(file, header, file_key, sop_key, study_key, changed=False)
    if hash_file(file.path)[0] in carried:
        return known.journal.is_confirmed(sop_key)
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
