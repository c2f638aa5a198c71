"""The last walk's answers, kept whole: a re-scan of an unchanged terminal asks the journal once.

A walk asks the journal, per file, what an earlier visit decided (a keyed hash and a B-tree
search per file) and opens each selected file's kept header (an authenticated decryption and a
JSON document per file): about 10 us a file, most of a re-scan's time once the walk itself is
done. A walk snapshot keeps what the journal answered for every file of the last walk, and what
that walk recorded itself, as one record per facility sealed with the journal key. The next
walk takes a file's answers from it instead, when the file has the path, size and mtime the
snapshot holds, exactly as it would have found them in the journal.

A snapshot is only ever the journal's own answer: the journal's triggers delete every snapshot
when a row of a table a walk reads changes (``WALK_READS``, migration journal-0006), and a
walk that wrote anything writes its snapshot only after its own writes. A snapshot that does
not open (damaged, another key) or was written by another format is ignored: the walk asks the
journal, as it did before snapshots existed.

Memory: a walk holds the snapshot it reads and the records of the next one, about 0.75 KB a
file (paths, keys and the values of the selected files' headers, shared within a study). A
terminal of more than :data:`LIMIT` files gets no snapshot: its walks ask the journal, in
memory for one chunk at a time.
"""

from __future__ import annotations

import marshal
import sys
from typing import TYPE_CHECKING, Any

from common.errors import KeyFileError
from courier.core.journal import FileState

if TYPE_CHECKING:
    from courier.core.journal import Journal

# marshal's format may change between Python versions: a snapshot says which one wrote it.
_FORMAT = (1, tuple(sys.version_info[:2]))
LIMIT = 100_000  # files of a walk with a snapshot: 75 MB at most
# One file's answers: (file key, size, mtime_ns, state, reason, study key, sop key, rule
# digest, header values and extra tags of a selected file or None, carried, confirmed); the
# fields from size to rule digest are those of its FileState row (without the sealed header).
Record = tuple[Any, ...]
_STATE = slice(1, 8)
FILE_KEY, SIZE, MTIME, SOP_KEY, OPENED, CARRIED, CONFIRMED = 0, 1, 2, 6, 8, 9, 10


def state_of(record: Record) -> FileState:
    """The journal's FileState row of a snapshot record (without the sealed header)."""
    return FileState(*record[_STATE])


class Recorder:
    """The answers of the walk going on, by path, for the next walk's snapshot.

    *stale* says whether the walk must write a new snapshot: it asked the journal for some
    file, or recorded a new decision (which, written, ended the snapshot it started from).
    Past :data:`LIMIT` files, or when *keeping* is false, it records nothing (more) and writes
    no snapshot.
    """

    def __init__(self, *, stale: bool, keeping: bool = True) -> None:
        self.records: dict[str, Record] = {}
        self.stale = stale
        self.keeping = keeping
        self._shared: dict[Any, Any] = {}  # values repeated from file to file, kept once

    def keep_records(self, records: list[tuple[str, Record]]) -> None:
        """Answers taken as they are from the snapshot the walk reads."""
        if not self.keeping:
            return
        self.records.update(records)
        self._bound()

    def _bound(self) -> None:
        if len(self.records) > LIMIT:
            self.records, self._shared, self.keeping = {}, {}, False

    def keep(
        self,
        relpath: str,
        file_key: str,
        state: FileState,
        opened: tuple[tuple[str, ...], dict[str, str]] | None = None,
        *,
        carried: bool = False,
        confirmed: bool = False,
    ) -> None:
        """The answer the journal holds for *relpath*, or will hold once the walk's decisions
        are written (a later answer for the same path replaces an earlier one)."""
        if not self.keeping:
            return
        share = self._shared.setdefault
        self.records[relpath] = (
            file_key,
            *map(share, state[:7], state[:7]),
            opened,
            carried,
            confirmed,
        )
        self._bound()


def load(journal: Journal, facility_id: str, header_fields: str) -> dict[str, Record]:
    """The last walk's records of *facility_id* by path; empty when there is no valid one."""
    try:
        payload = journal.walk_snapshot(facility_id)
    except (KeyFileError, ValueError):  # damaged (even cut short), or another key: ask the journal
        return {}
    if payload is None:
        return {}
    try:
        # Authenticated: the journal key opened it, so these are bytes this device wrote.
        form, fields, records = marshal.loads(payload)  # noqa: S302
    except (EOFError, ValueError, TypeError):
        return {}
    if form != _FORMAT or fields != header_fields or not isinstance(records, dict):
        return {}
    return records


def save(journal: Journal, facility_id: str, header_fields: str, recorder: Recorder) -> None:
    """Keep this walk's records as the facility's snapshot (after the walk's own writes), unless
    it walked more than :data:`LIMIT` files."""
    if not recorder.keeping:
        return
    payload = marshal.dumps((_FORMAT, header_fields, recorder.records))
    journal.put_walk_snapshot(facility_id, payload)
