"""Storing a bundle's objects in the archive: reading, decryption, checks and writes overlapped.

Every object gets the checks and the order of :func:`center.core.decrypt.store_object`: one the
store already holds is checked by its header against the index; any other is decrypted, its
size, sha256 and header checked against the index, written to a temporary file in the
archive's ``tmp/`` (checked writes), fsynced and renamed into ``objects/ab/cd/<sha256>``; a
failure of the archive's disk stops everything (ArchiveFull, StorageError), a bad object is
rejected with its reason. What this module changes is the scheduling:

* two reader threads look each object up in the store and, when it is not there, read its
  ciphertext whole (objects up to :data:`SMALL_OBJECT`; a bigger one is streamed through
  ``store_object`` itself);
* :data:`CHECKERS` threads decrypt each object in memory (nothing of an object that fails to
  decrypt reaches the disk), hash and header-check its plaintext, and write an accepted one
  to its temporary file (checked writes), starting its write-back at once; the decryption
  (:func:`common.crypto.decrypt_object_bytes`) and the writes let the other threads run
  meanwhile, so this spreads over the cores;
* ONE renamer thread takes the objects in index order: their fsyncs run side by side in
  :data:`FLUSHERS` threads, and it renames each into place, strictly in index order, once its
  fsync is done (at most :data:`LAG` objects behind). Every rename is made by that one thread
  in order, so the sequence of renames is the same from run to run;
* the renames are made durable together (one syncfs of the file system,
  :func:`common.fsio.sync_file_systems`, once :data:`DIR_BATCH` directories were touched and
  at the end; DESIGN.md s6: objects first), before this returns: the caller's
  catalog transaction still comes after every object is durable, and a crash before it
  leaves at most unreferenced objects.

Memory held at once is bounded: :data:`READ_AHEAD` bytes of ciphertext read ahead, and
:data:`WRITE_BEHIND` bytes of objects being decrypted, checked or written (each counted once,
though its ciphertext and plaintext are both held while it is decrypted), plus one object
beyond each bound.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import queue
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from center.core import quarantine
from center.core.decrypt import check_header, storage_error, store_object
from center.core.screening import payload_damage
from common.bundle.reader import IndexEntry
from common.bundle.verify import ALTERED
from common.bundle.writer import hash_file
from common.crypto import decrypt_object_bytes
from common.errors import DecryptError, StorageError
from common.fsio import finish_new_file, read_file, start_new_file
from common.heap import reuse_one_heap_for_big_buffers
from common.progress import Progress

if TYPE_CHECKING:
    from center.core.archive import Archive

SMALL_OBJECT = 32 << 20  # decrypted in memory up to this size, streamed beyond
READ_AHEAD = 8 << 20  # ciphertext read ahead of the decryption
WRITE_BEHIND = 16 << 20  # plaintext decrypted, waiting to be checked and written
LAG = 16  # objects written ahead of the one being renamed
FLUSHERS = 4  # fsyncs waiting for the disk at once
DIR_BATCH = 1024  # touched directories made durable together while storing goes on
READERS = 2
CHECKERS = 2

# What one object came to: None when stored, else why it was rejected (as the import reports
# it); and the directories its rename touched.
_Done = tuple[str | None, list[Path]]
_Outcome = Future[_Done] | _Done
# An object looked up: (None, None) when the store holds its bytes, else its ciphertext (b""
# when it is not read here) and why it is damaged on the drive (None when it is not).
_Read = tuple[bytes | None, str | None]
# An object decrypted, checked and written to its temporary file: (that file, its open
# descriptor), or None and why it was rejected (as the import reports it).
_Opened = tuple[tuple[Path, int] | None, str | None]


def _problem(reason: str | None) -> _Done:
    return (None if reason is None else f"object {reason}"), []


class _Renamer:
    """The one thread putting objects into the store, in the order they are handed to it.

    Each object comes written to its temporary file, its write-back started; its fsync then
    runs in one of :data:`FLUSHERS` threads (concurrent fsyncs share the file system's journal
    commits), and this thread renames the objects into place strictly in order, each once its
    fsync is done, at most :data:`LAG` objects behind the newest. When its queue runs dry it
    finishes every waiting object (so nothing waits on an object nobody follows).
    """

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.flushers = ThreadPoolExecutor(FLUSHERS, "store-fsync")
        self.lagging: deque[_Lagging] = deque()
        self.failed: BaseException | None = None
        self.names = itertools.count()
        self.prefix = secrets.token_hex(4)
        self.thread = threading.Thread(target=self._run, name="store-rename", daemon=True)
        self.thread.start()

    def temp_name(self) -> Path:
        """A new temporary file's name in the archive's ``tmp/`` (any thread may ask)."""
        folder: Path = self.archive.paths.tmp
        return folder / f"{self.prefix}-{next(self.names)}.tmp-partial"

    def submit(self, entry: IndexEntry, opened: Future[_Opened]) -> Future[_Done]:
        done: Future[_Done] = Future()
        self.queue.put((entry, opened, done))
        return done

    def flush(self) -> None:
        """Wait until every object handed over is fsynced and renamed (raises its error)."""
        barrier: Future[_Done] = Future()
        self.queue.put((None, None, barrier))
        barrier.result()

    def close(self) -> None:
        """Stop the thread (after what it was given); remove what a failure left half-done."""
        self.queue.put(None)
        self.thread.join()
        self.flushers.shutdown(wait=True)
        for _entry, tmp, synced, done in self.lagging:  # only after a failure
            if synced.exception() is None:
                tmp.unlink(missing_ok=True)  # fsynced and closed, never renamed
            if not done.done():
                done.set_exception(self.failed or RuntimeError("the renamer stopped"))

    def _run(self) -> None:
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                self._guarded(lambda: self._drain(0), None)
                job = self.queue.get()
            if job is None:
                return
            self._guarded(functools.partial(self._handle, *job), job[2])

    def _guarded(self, action: Callable[[], None], done: Future[_Done] | None) -> None:
        """Run *action*; whatever it raises goes to the waiting futures, where the importing
        thread re-raises it (a renamer thread dying silently would leave it waiting forever)."""
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - handed over and re-raised, not swallowed
            self._fail(done, exc)

    def _handle(
        self, entry: IndexEntry | None, opened: Future[_Opened] | None, done: Future[_Done]
    ) -> None:
        if self.failed is not None:
            _discard(opened)
            done.set_exception(self.failed)
        elif entry is None:  # a barrier
            self._drain(0)
            if self.failed is None:
                done.set_result((None, []))
            else:
                done.set_exception(self.failed)
        elif opened is not None:
            self._write(entry, opened, done)

    def _write(self, entry: IndexEntry, opened: Future[_Opened], done: Future[_Done]) -> None:
        written, reason = opened.result()  # raises the StorageError of a failed write
        if written is None:
            done.set_result((reason, []))
            return
        tmp, fd = written
        synced = self.flushers.submit(finish_new_file, tmp, fd)
        self.lagging.append((entry, tmp, synced, done))
        self._drain(LAG)

    def _drain(self, keep: int) -> None:
        """Rename the fsynced objects into place, in order: every one beyond the *keep* most
        recent, and any further one whose fsync is already done."""
        while self.lagging and self.failed is None:  # after a failure: close() cleans up
            entry, tmp, synced, done = self.lagging[0]
            if len(self.lagging) <= keep and not synced.done():
                return
            self.lagging.popleft()
            try:
                synced.result()
            except OSError as exc:  # the file is already removed
                self._fail(done, storage_error(exc, f"object {entry.path}"))
                return
            try:
                done.set_result((None, self.archive.store.place(tmp, entry.sha256)))
            except StorageError as exc:
                tmp.unlink(missing_ok=True)
                self._fail(done, exc)

    def _fail(self, done: Future[_Done] | None, exc: BaseException) -> None:
        """Hand the error to every object waiting (the import stops on it)."""
        self.failed = exc
        for waiting in [done, *(item[3] for item in self.lagging)]:
            if waiting is not None and not waiting.done():
                waiting.set_exception(exc)


def _discard(opened: Future[_Opened] | None) -> None:
    """Remove the temporary file of an object written after the import failed."""
    if opened is None or opened.cancelled() or opened.exception() is not None:
        return
    written, _reason = opened.result()
    if written is not None:
        tmp, fd = written
        os.close(fd)
        tmp.unlink(missing_ok=True)


# An object written, waiting for its fsync (the future) and then its rename.
_Lagging = tuple[IndexEntry, Path, Future[None], Future[_Done]]
# An object handed to the renamer thread: (entry, its decryption and checks, its outcome); a
# barrier has neither.
_Job = tuple[IndexEntry | None, Future[_Opened] | None, Future[_Done]]


class _Pipeline:
    def __init__(
        self, archive: Archive, identity: str, bundle_dir: Path, manifest: dict[str, str] | None
    ) -> None:
        self.archive, self.identity, self.bundle_dir = archive, identity, bundle_dir
        self.manifest = manifest
        self.readers = ThreadPoolExecutor(READERS, "store-read")
        self.checkers = ThreadPoolExecutor(CHECKERS, "store-check")
        self.renamer = _Renamer(archive)
        self.in_flight: dict[str, Future[_Done]] = {}  # sha256 -> its write (same bytes twice)

    def close(self, *, failed: bool) -> None:
        for pool in (self.readers, self.checkers):
            pool.shutdown(wait=True, cancel_futures=failed)
        self.renamer.close()

    def read(self, entry: IndexEntry, damaged: str | None) -> Future[_Read]:
        """Start looking *entry* up in the store and, when it is not there and undamaged,
        reading its ciphertext (an object streamed later is only checked against the signed
        manifest)."""
        return self.readers.submit(self._read, entry, damaged)

    def _read(self, entry: IndexEntry, damaged: str | None) -> _Read:
        if self.archive.store.exists(entry.sha256):
            return None, None
        if damaged is not None:
            return b"", damaged
        path = self.bundle_dir / entry.path
        if entry.size <= SMALL_OBJECT:  # checked against the manifest if it is refused
            return read_file(path), None
        if self.manifest is not None and hash_file(path)[0] != self.manifest.get(entry.path):
            return b"", payload_damage(ALTERED)
        return b"", None  # streamed later

    def store(self, entry: IndexEntry, looked_up: Future[_Read]) -> _Outcome:
        """Start storing *entry*: its outcome, or the future of it."""
        try:
            ciphertext, damaged = looked_up.result()
        except OSError as exc:  # reading the drive
            name = Path(entry.path).name
            detail = f"object {name} failed to decrypt: {exc.strerror or exc}"
            return _problem(f"does not decrypt with the center key ({detail})")
        earlier = self.in_flight.get(entry.sha256)
        if earlier is not None:  # the same bytes again: once written, the store holds them
            self.renamer.flush()
            earlier.result()
            ciphertext = None if self.archive.store.exists(entry.sha256) else ciphertext
        if ciphertext is None:
            return self.checkers.submit(self._check_stored, entry)
        if damaged is not None:  # and the archive does not hold these bytes already
            return damaged, []
        if entry.size > SMALL_OBJECT:  # streamed, durable on return
            self.renamer.flush()
            return _problem(store_object(self.archive, self.identity, self.bundle_dir, entry))
        opened = self.checkers.submit(self._open, entry, ciphertext)
        job = self.renamer.submit(entry, opened)
        self.in_flight[entry.sha256] = job
        return job

    def _check_stored(self, entry: IndexEntry) -> _Done:
        return _problem(check_header(self.archive.store.path(entry.sha256), entry))

    def _open(self, entry: IndexEntry, ciphertext: bytes) -> _Opened:
        """Decrypt an object, check it against the index and, when it is what the index
        promises, write it to a new temporary file (not fsynced yet): that file and its open
        descriptor, or why the object was rejected. StorageError if the write failed."""
        try:
            plain = decrypt_object_bytes(ciphertext, self.identity, Path(entry.path).name)
        except DecryptError as exc:
            failed = f"does not decrypt with the center key ({exc.message})"
            return None, self._blame(entry, ciphertext, failed)
        reason = _rejected(entry, plain)
        if reason is not None:
            return None, self._blame(entry, ciphertext, reason)
        tmp = self.renamer.temp_name()
        try:
            return (tmp, start_new_file(tmp, plain, mode=0o444)), None  # read-only from the start
        except OSError as exc:
            raise storage_error(exc, f"object {entry.path}") from exc

    def _blame(self, entry: IndexEntry, ciphertext: bytes, reason: str) -> str:
        """Why an object is refused, as the import reports it: altered on the drive when its
        ciphertext is not the one the signed manifest lists, else *reason*.

        An accepted object's ciphertext is not hashed: it decrypted (age authenticates every
        chunk and the header) to the plaintext whose sha256 the signed index gives, which is
        the end-to-end check; the drive's damage is told apart only for a refused one.
        """
        if self.manifest is None:
            return f"object {reason}"
        listed = self.manifest.get(entry.path)
        altered = hashlib.sha256(ciphertext).hexdigest() != listed
        return payload_damage(ALTERED) if altered else f"object {reason}"


def _rejected(entry: IndexEntry, plain: bytes) -> str | None:
    """Why a decrypted object is not what the index promises (None when it is)."""
    if len(plain) != entry.size:
        detail = f"object {entry.path} decrypted to {len(plain)} bytes, index says {entry.size}"
        return f"does not decrypt with the center key ({detail})"
    if hashlib.sha256(plain).hexdigest() != entry.sha256:
        return "decrypts to other bytes than the index promises (sha256 mismatch)"
    return check_header(plain, entry)


def store_objects(
    archive: Archive,
    identity: str,
    bundle_dir: Path,
    entries: Iterable[IndexEntry],
    damaged: dict[str, str],
    progress: Progress,
    *,
    manifest: dict[str, str] | None = None,
) -> tuple[set[int], list[quarantine.Rejected]]:
    """Store every object of *entries* not damaged on the drive (or already held): the seqs
    stored, and the objects rejected with their reasons (in index order).

    *damaged* holds what the keyless verification found (object path -> reason). With
    *manifest* (object path -> ciphertext sha256), an object refused is checked against it
    here, so that damage on the drive is named as such (``altered``); the verification then
    needs to check only presence and sizes, and the drive is read once. An object stored is
    not hashed twice: it decrypted, age authenticating its every chunk, to the plaintext the
    signed index promises (see :meth:`_Pipeline._blame`).
    """
    reuse_one_heap_for_big_buffers()

    pipeline = _Pipeline(archive, identity, bundle_dir, manifest)
    results = _Results(pipeline.in_flight)
    failed = True
    try:
        reads: deque[tuple[IndexEntry, Future[_Read]]] = deque()
        ahead = 0
        todo = iter(entries)
        while True:
            while ahead < READ_AHEAD and (entry := next(todo, None)) is not None:
                reads.append((entry, pipeline.read(entry, damaged.get(entry.path))))
                ahead += entry.size
            if not reads:
                break
            entry, looked_up = reads.popleft()
            ahead -= entry.size
            results.add(entry, pipeline.store(entry, looked_up))
            progress.advance(1, nbytes=entry.size)
            results.settle(wait=results.held >= WRITE_BEHIND)
            if len(results.touched) >= DIR_BATCH:
                archive.store.sync_dirs(results.touched)
                results.touched.clear()
        pipeline.renamer.flush()
        results.settle(wait=True, all_of_them=True)
        archive.store.sync_dirs(results.touched)
        failed = False
    finally:
        pipeline.close(failed=failed)
    return results.stored, results.rejected


class _Results:
    """Outcomes collected in index order; *held* counts the bytes still in memory. A settled
    write leaves *in_flight* (the pipeline's writes by sha256), so memory stays bounded."""

    def __init__(self, in_flight: dict[str, Future[_Done]]) -> None:
        self.pending: deque[tuple[IndexEntry, _Outcome]] = deque()
        self.stored: set[int] = set()
        self.rejected: list[quarantine.Rejected] = []
        self.touched: set[Path] = set()
        self.held = 0
        self.in_flight = in_flight

    def add(self, entry: IndexEntry, outcome: _Outcome) -> None:
        self.pending.append((entry, outcome))
        self.held += entry.size

    def settle(self, *, wait: bool, all_of_them: bool = False) -> None:
        """Collect what is ready; with *wait*, wait for the oldest (or, with *all_of_them*,
        for every one)."""
        while self.pending:
            entry, outcome = self.pending[0]
            if isinstance(outcome, Future):
                if not (wait or outcome.done()):
                    return
                if self.in_flight.get(entry.sha256) is outcome:
                    del self.in_flight[entry.sha256]
                outcome = outcome.result()
                wait = all_of_them
            self.pending.popleft()
            self.held -= entry.size
            reason, dirs = outcome
            self.touched.update(dirs)
            if reason is None:
                self.stored.add(entry.seq)
            else:
                self.rejected.append(quarantine.Rejected(entry.path, entry.seq, reason))
