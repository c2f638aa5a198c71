"""Retrieving a DICOM node's missing instances into the open bundle (C-GET, PS3.4 C.4.3).

Instances arrive on the association's thread: each is parsed, encrypted onto the drive and
queued; the caller's thread records the queued objects in the journal after every C-GET
response (a SQLite connection stays in its thread). An object durable on the drive but not yet
recorded when the pull dies is an orphan the next run removes (courier/core/bundlejob.py).
"""

from __future__ import annotations

import io
import itertools
from collections import deque

from common.bundle.writer import BundleWriter
from common.crypto import ObjectDigest
from common.dicomhdr import HeaderError, InstanceHeader, read_header_values
from common.progress import Progress
from courier.core.copier import CopyResult, drive_error, index_entry
from courier.core.journal import Journal, NewObject
from courier.core.node import NodeClient
from courier.core.plan import NodeStudy, Plan, SeriesRef, Skipped


def copy_node(
    journal: Journal,
    writer: BundleWriter,
    bundle_id: str,
    plan: Plan,
    client: NodeClient,
    recipients: list[str],
    progress: Progress,
) -> CopyResult:
    """Retrieve the missing instances of each selected study over C-GET onto the drive."""
    result = CopyResult()
    progress.phase("retrieve", sum(s.missing for s in plan.node_studies))
    receiver = _Receiver(journal, writer, bundle_id, recipients, progress, result)
    for study in plan.node_studies:
        for series, whole in study.series:
            receiver.expect(study, series)
            outcome = client.get(
                study.match.study_uid,
                series,
                receiver.on_instance,
                receiver.record,
                whole_series=whole,
            )
            receiver.record()
            result.node_failures += outcome.failed
    return result


class _Receiver:
    """Instances arriving from a C-GET: written to the drive in the association's thread,
    recorded in the journal in the caller's (SQLite connections stay in their thread)."""

    def __init__(
        self,
        journal: Journal,
        writer: BundleWriter,
        bundle_id: str,
        recipients: list[str],
        progress: Progress,
        result: CopyResult,
    ) -> None:
        self._journal, self._writer, self._bundle_id = journal, writer, bundle_id
        self._recipients, self._progress, self._result = recipients, progress, result
        self._facility_id = journal.facility_of(bundle_id)
        self._seqs = itertools.count(journal.next_seq(bundle_id))
        self._done: deque[tuple[int, InstanceHeader, ObjectDigest, str]] = deque()
        self._wanted: set[str] = set()
        self._prefix = ""

    def expect(self, study: NodeStudy, series: SeriesRef) -> None:
        self._wanted = {ref.sop_uid for ref in series.instances}
        self._prefix = f"{study.match.study_uid}/{series.series_uid}"

    def on_instance(self, uid: str, data: bytes) -> None:
        if uid not in self._wanted:
            return
        relpath = f"{self._prefix}/{uid}"
        try:
            header, _ = read_header_values(io.BytesIO(data), ())
        except HeaderError as exc:
            self._result.skipped.append(Skipped(relpath, exc.reason))
            return
        seq = next(self._seqs)
        try:
            digest = self._writer.write_object(seq, io.BytesIO(data), self._recipients)
        except OSError as exc:
            raise drive_error(exc, "retrieval") from exc
        self._done.append((seq, header, digest, relpath))

    def record(self) -> None:
        key = self._journal.uid_key
        while self._done:
            seq, header, digest, relpath = self._done.popleft()
            self._journal.add_object(
                self._bundle_id,
                NewObject(
                    seq,
                    self._journal.file_key(self._facility_id, f"dicom:{header.sop_instance_uid}"),
                    key("sop", header.sop_instance_uid),
                    key("study", header.study_instance_uid),
                    digest.plain_sha256,
                    digest.plain_size,
                    digest.cipher_sha256,
                    digest.cipher_size,
                    index_entry(seq, digest, relpath, False, header),
                    None,
                ),
            )
            self._result.copied += 1
            self._progress.advance(1, nbytes=digest.plain_size)
