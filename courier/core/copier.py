"""Copying a plan's files onto the drive: a pipeline over both cores, one writer to the drive.

Per object the order that makes a crash harmless is kept (DESIGN.md s6): the ciphertext is
written to a temporary file, checked and fsynced, renamed into place, its directory fsynced,
and only then is its journal row written. What runs side by side is the work around that:

* two reader threads read each source file whole (files up to :data:`SMALL_FILE`), hash it
  and encrypt it in memory (:func:`common.crypto.encrypt_object_bytes`, which lets the other
  threads run meanwhile, so this spreads over both cores);
* ONE writer thread writes each ciphertext to its temporary file (checked writes, hashed)
  and starts its write-back; the fsyncs then wait for the device side by side (the device
  serves several requests in flight better than one at a time), each followed by the rename;
  after every :data:`BATCH` objects their directories are fsynced, and once that is done the
  calling thread records the batch in the journal in one transaction;
* two verifier threads re-read every recorded object from the device (page cache evicted), the
  read-back sealing requires (courier/core/bundlejob.py::read_back), while later objects are
  still being copied.

A file bigger than :data:`SMALL_FILE` is streamed through the guarded writer of
common/crypto/, durable on return, between the batches. Plaintext and ciphertext held in
memory at once are bounded by :data:`IN_FLIGHT` bytes (plus one big file's read buffer).
"""

from __future__ import annotations

import errno
import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from common.bundle import format as fmt
from common.bundle.writer import BundleWriter
from common.crypto import ObjectDigest, encrypt_object_bytes
from common.dicomhdr import InstanceHeader
from common.errors import ArchiveError, DriveError, DriveFull
from common.fsio import RecordingReader
from common.heap import reuse_one_heap_for_big_buffers
from common.progress import Progress
from courier.core.journal import Journal, NewObject
from courier.core.plan import Candidate, Plan, Skipped

SMALL_FILE = 32 << 20  # encrypted whole in memory up to this size, streamed beyond
IN_FLIGHT = 16 << 20  # objects read and encrypted ahead, plus ciphertext waiting for the writer
BATCH = 64  # objects per directory-fsync and journal transaction
FLUSHERS = 3  # fsyncs waiting for the device at once
VERIFIERS = 2  # objects re-read from the device at once


@dataclass
class CopyResult:
    copied: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    node_failures: int = 0
    verified: dict[int, tuple[str, int]] = field(default_factory=dict)  # seq -> read back


@dataclass
class _Read:
    """A source file read whole, hashed and encrypted (or why it could not be)."""

    ciphertext: bytes | None = None
    sha256: str = ""
    size: int = 0
    skipped: str = ""


@dataclass
class _Written:
    """An object handed to the writer thread, waiting to be recorded."""

    seq: int
    cand: Candidate
    plain: tuple[str, int]
    write: Future[Future[tuple[str, int]]]  # staged by the writer, then fsynced and renamed
    nbytes: int

    def cipher(self) -> tuple[str, int]:
        """(ciphertext sha256, size) once the object is fsynced and renamed."""
        return self.write.result().result()


def drive_error(exc: OSError, during: str) -> ArchiveError:
    """The operator's error for a failed write to the drive."""
    if exc.errno == errno.ENOSPC:
        return DriveFull(
            f"the drive filled up during the {during}",
            hint="Free space on the drive or change it, then run the pull again to resume.",
        )
    return DriveError(
        f"writing to the drive failed during the {during}: {exc.strerror or exc}",
        hint="Check that the drive is still plugged in and mounted, then run the pull again "
        "to resume: nothing already copied is lost.",
    )


def index_entry(
    seq: int, digest: ObjectDigest, relpath: str, changed: bool, header: InstanceHeader
) -> dict[str, Any]:
    """The object's line in the bundle's index (kept sealed in the journal until sealing)."""
    return {
        "seq": seq,
        "path": fmt.object_relpath(seq),
        "sha256": digest.plain_sha256,
        "size": digest.plain_size,
        "source_relpath": relpath,
        "changed_since_last_pull": changed,
        "header": header.to_dict(),
    }


def _read(cand: Candidate, recipients: list[str]) -> _Read:
    size = cand.file.size
    if size > SMALL_FILE:
        return _Read()
    try:
        with cand.file.path.open("rb") as fh:
            data = fh.read(size + 1)
    except OSError as exc:
        return _Read(skipped=f"unreadable at copy time ({exc.strerror or 'read error'})")
    if len(data) != size:
        return _Read(skipped="changed while being copied: taken at the next visit")
    digest = hashlib.sha256(data).hexdigest()
    return _Read(encrypt_object_bytes(data, recipients), digest, size)


class _Pipeline:
    def __init__(
        self,
        journal: Journal,
        writer: BundleWriter,
        bundle_id: str,
        recipients: list[str],
        progress: Progress,
        result: CopyResult,
    ) -> None:
        self.journal, self.writer, self.bundle_id = journal, writer, bundle_id
        self.recipients, self.progress, self.result = recipients, progress, result
        self.readers = ThreadPoolExecutor(2, "copy-read")
        self.write_thread = ThreadPoolExecutor(1, "copy-write")
        self.flushers = ThreadPoolExecutor(FLUSHERS, "copy-fsync")
        self.sync_thread = ThreadPoolExecutor(1, "copy-dirsync")
        self.verifier = ThreadPoolExecutor(VERIFIERS, "copy-verify")
        self.batch: list[_Written] = []
        self.syncing: deque[tuple[Future[None], list[_Written]]] = deque()
        self.waiting_bytes = 0

    def close(self, *, failed: bool) -> None:
        pools = (self.readers, self.write_thread, self.flushers, self.sync_thread, self.verifier)
        for pool in pools:  # in this order: a pool may still hand work to the next ones
            pool.shutdown(wait=True, cancel_futures=failed)

    def run(self, candidates: list[Candidate], first_seq: int) -> None:
        seq = first_seq
        reads: deque[tuple[Candidate, Future[_Read]]] = deque()
        ahead = 0
        todo = iter(candidates)
        while True:
            while ahead < IN_FLIGHT and (cand := next(todo, None)) is not None:
                reads.append((cand, self.readers.submit(_read, cand, self.recipients)))
                ahead += min(cand.file.size, SMALL_FILE)
            if not reads:
                break
            cand, future = reads.popleft()
            read = future.result()
            ahead -= min(cand.file.size, SMALL_FILE)
            if read.skipped:
                self.result.skipped.append(Skipped(cand.file.relpath, read.skipped))
            elif read.ciphertext is None:
                if self._stream(seq, cand):
                    seq += 1
            else:
                self._write(seq, cand, read)
                seq += 1
            self.progress.advance(1, nbytes=cand.file.size)
            self._record_ready(wait=False)
        self._end_batch()
        self._record_ready(wait=True)
        self.verifier.shutdown(wait=True)  # every read-back done: result.verified is whole

    def _write(self, seq: int, cand: Candidate, read: _Read) -> None:
        ciphertext = cast(bytes, read.ciphertext)
        if self.waiting_bytes > IN_FLIGHT:  # the writer is behind: let it catch up
            self._end_batch()
            self._record_ready(wait=True, only_one=True)
        write = self.write_thread.submit(self._stage, seq, ciphertext)
        self.waiting_bytes += len(ciphertext)
        self.batch.append(_Written(seq, cand, (read.sha256, read.size), write, len(ciphertext)))
        if len(self.batch) >= BATCH:
            self._end_batch()

    def _stage(self, seq: int, ciphertext: bytes) -> Future[tuple[str, int]]:
        """In the writer thread: write the temporary file, hand its fsync to a flusher."""
        staged = self.writer.stage_ciphertext(seq, ciphertext)
        return self.flushers.submit(self.writer.commit_staged, staged)

    def _sync_batch(self, batch: list[_Written]) -> None:
        """In the dir-sync thread: once every object of *batch* is renamed, fsync their dirs."""
        for written in batch:
            written.cipher()
        self.writer.sync_dirs(w.seq for w in batch)

    def _stream(self, seq: int, cand: Candidate) -> bool:
        """Copy a big file through the streaming guarded writer; False if it was skipped."""
        self._end_batch()
        self._record_ready(wait=True)
        try:
            stream = cand.file.path.open("rb")
        except OSError as exc:
            reason = f"unreadable at copy time ({exc.strerror})"
            self.result.skipped.append(Skipped(cand.file.relpath, reason))
            return False
        with stream:
            source = RecordingReader(stream)
            try:
                digest = self.writer.write_object(seq, cast(BinaryIO, source), self.recipients)
            except OSError as exc:
                if source.error is not None:
                    reason = f"unreadable at copy time ({source.error.strerror or 'read error'})"
                    self.result.skipped.append(Skipped(cand.file.relpath, reason))
                    return False
                raise drive_error(exc, "copy") from exc
        if digest.plain_size != cand.file.size:
            (self.writer.dir / fmt.object_relpath(seq)).unlink()
            reason = "changed while being copied: taken at the next visit"
            self.result.skipped.append(Skipped(cand.file.relpath, reason))
            return False
        self._record([(seq, cand, digest)])
        return True

    def _verify(self, seq: int) -> None:
        """In a verifier thread: read the object back from the device. A failure is left to
        the read-back phase, which reads it again and reports it."""
        try:
            self.result.verified[seq] = self.writer.read_back(seq, synced=True)
        except OSError:
            return

    def _end_batch(self) -> None:
        """Queue the directory fsync of the current batch behind its writes."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        self.syncing.append((self.sync_thread.submit(self._sync_batch, batch), batch))

    def _record_ready(self, *, wait: bool, only_one: bool = False) -> None:
        """Record in the journal every batch whose objects are durable (in order)."""
        while self.syncing and (wait or self.syncing[0][0].done()):
            synced, batch = self.syncing.popleft()
            try:
                synced.result()
                ciphers = [w.cipher() for w in batch]
            except OSError as exc:
                raise drive_error(exc, "copy") from exc
            self.waiting_bytes -= sum(w.nbytes for w in batch)
            self._record(
                [
                    (w.seq, w.cand, ObjectDigest(w.plain[0], w.plain[1], *cipher))
                    for w, cipher in zip(batch, ciphers, strict=True)
                ]
            )
            if only_one:
                return

    def _record(self, objects: list[tuple[int, Candidate, ObjectDigest]]) -> None:
        rows = [
            NewObject(
                seq,
                cand.file_key,
                cand.sop_key,
                cand.study_key,
                digest.plain_sha256,
                digest.plain_size,
                digest.cipher_sha256,
                digest.cipher_size,
                index_entry(seq, digest, cand.file.relpath, cand.changed, cand.header),
                cand.file_state(),
            )
            for seq, cand, digest in objects
        ]
        self.journal.add_objects(self.bundle_id, rows)
        self.result.copied += len(rows)
        for seq, _cand, _digest in objects:
            self.verifier.submit(self._verify, seq)


def copy_files(
    journal: Journal,
    writer: BundleWriter,
    bundle_id: str,
    plan: Plan,
    recipients: list[str],
    progress: Progress,
) -> CopyResult:
    """Encrypt every candidate file onto the drive, recording each once it is durable; the
    result holds what each copied object read back as from the device."""
    result = CopyResult()
    progress.phase("copy", len(plan.candidates))
    reuse_one_heap_for_big_buffers()
    pipeline = _Pipeline(journal, writer, bundle_id, recipients, progress, result)
    failed = True
    try:
        pipeline.run(plan.candidates, journal.next_seq(bundle_id))
        failed = False
    finally:
        pipeline.close(failed=failed)
    return result
