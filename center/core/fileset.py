"""A DICOM File-set (PS3.10 section 8) of archived objects, byte for byte, with its DICOMDIR.

pydicom's :class:`~pydicom.fileset.FileSet` builds the directory records (PS3.3 Annex F) and
the layout (``PTxxxxxx/STxxxxxx/SExxxxxx/IMxxxxxx``). It normally re-encodes each instance it
stages; here it stages the header only, and the staged file is then replaced by the archived
object itself, copied from the store while its sha256 is checked against the catalog. After
the write, every file of the set is read back and checked again. So each file handed over is
exactly the object the clinic delivered.

Directory records need a few Type 1 values an instance may lack (PS3.3 F.5: Patient ID; Study
Date, Time and ID; Modality and Series Number; Instance Number). As dcmtk's ``dcmmkdir +I``
does, missing ones are invented in the record only (``UNKNOWN``, ``19000101``, ``000000``,
``0``, ``OT``); the instance files are never changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.fileset import FileInstance, FileSet, RecordNode

from center.core.exportcopy import SetMember, copy_verified
from center.core.store import ObjectStore
from common.errors import ExportError, IntegrityError
from common.fsio import fsync_dir

_CHUNK = 1 << 20
# Record values invented when an instance lacks them (the file itself is not changed).
_INVENTED = {
    "PatientID": "UNKNOWN",
    "StudyDate": "19000101",
    "StudyTime": "000000",
    "StudyID": "0",
    "Modality": "OT",
    "SeriesNumber": "0",
}


def _record_header(store: ObjectStore, member: SetMember, number: int) -> pydicom.Dataset:
    """The object's header, with the Type 1 values records need filled in where missing."""
    try:
        ds = pydicom.dcmread(store.path(member.sha256), stop_before_pixels=True)
    except FileNotFoundError as exc:
        raise IntegrityError(
            f"object {member.sha256[:12]} is in the catalog but missing from the store"
        ) from exc
    except (InvalidDicomError, ValueError, OSError) as exc:
        raise ExportError(
            f"object {member.sha256[:12]} cannot be read as DICOM for the DICOMDIR: {exc}"
        ) from exc
    for keyword, value in _INVENTED.items():
        if not str(ds.get(keyword, "") or "").strip():
            setattr(ds, keyword, value)
    if not str(ds.get("InstanceNumber", "") or "").strip():
        ds.InstanceNumber = str(number)
    return ds


class _UniqueFileSet(FileSet):
    """A FileSet told that every instance added is new (the caller guarantees unique UIDs).

    ``FileSet.add`` first looks for the SOP Instance UID among all instances already added,
    by iterating the set: quadratic in the number of instances (an export of 1,377 instances
    spent 22 of its 39 s there). While :attr:`adding_new` is set, iteration yields nothing, so
    that look-up finds nothing at once; it is reset before the set is written.
    """

    adding_new = False

    def __iter__(self) -> Iterator[FileInstance]:
        if self.adding_new:
            return iter(())
        return super().__iter__()


class _FastNode(RecordNode):
    """A directory-record node whose key and children's keys are computed once.

    pydicom's tree insertion asks ``node in parent`` at each level, which recomputes the key of
    every child: quadratic in the instances of a series (2,000 slices took 28 s). Nodes here are
    only ever appended to, so the keys seen so far are kept in a set.
    """

    def __init__(self, record: pydicom.Dataset) -> None:
        self._key: str | None = None  # set before RecordNode.__init__, which reads the key
        self._child_keys: set[str] = set()
        self._seen = 0
        super().__init__(record)

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = str(super().key)
        return self._key

    def __contains__(self, key: object) -> bool:
        if isinstance(key, RecordNode):
            key = key.key
        children = self.children
        for child in children[self._seen :]:
            self._child_keys.add(str(child.key))
        self._seen = len(children)
        return key in self._child_keys


def _leaf(fs: FileSet, header: pydicom.Dataset) -> _FastNode:
    """The chain of directory records of *header* (PATIENT, STUDY, SERIES, leaf), as nodes."""
    parent: _FastNode | None = None
    node: _FastNode | None = None
    for record in fs._recordify(header):  # pydicom's own record creators (PS3.3 F.5)
        node = _FastNode(record)
        if parent is not None:
            node.parent = parent
        parent = node
    if node is None:
        raise ValueError("no directory record for this instance")
    return node


def _stage_in(fs: FileSet, folder: Path) -> None:
    """Keep pydicom's staging area in *folder* (the archive's own disk), not the system tmp."""
    # pydicom has no option for the staging folder: set its private one.
    stage = fs._stage
    if not isinstance(stage.get("t"), TemporaryDirectory):
        raise RuntimeError("pydicom's FileSet staging layout changed; check the pydicom version")
    stage["t"].cleanup()
    stage["t"] = TemporaryDirectory(dir=folder, prefix="fileset-stage-")
    stage["path"] = Path(stage["t"].name)


def write_fileset(
    root: Path,
    members: Sequence[SetMember],
    store: ObjectStore,
    *,
    stage_folder: Path,
    fileset_id: str,
    on_member: Callable[[int], None] = lambda _n: None,
) -> dict[str, str]:
    """Write *members* as a File-set with a DICOMDIR under the empty folder *root*.

    Returns each SOP Instance UID's file path relative to *root* (``PT000000/ST000000/...``).
    Everything written is fsynced; the caller renames *root* into place.
    """
    if len({m.sop_instance_uid for m in members}) != len(members):
        raise ValueError("a file-set holds each SOP Instance UID once")
    fs = _UniqueFileSet()
    _stage_in(fs, stage_folder)
    fs.ID = fileset_id[:16].upper()
    try:
        fs.adding_new = True
        for number, member in enumerate(members, start=1):
            header = _record_header(store, member, number)
            try:
                instance = fs.add_custom(header, _leaf(fs, header))
            except (ValueError, KeyError, AttributeError) as exc:
                raise ExportError(
                    f"object {member.sha256[:12]} (SOP class {member.sop_class_uid}) cannot be "
                    f"listed in a DICOMDIR: {exc}"
                ) from exc
            with Path(instance.path).open("wb") as staged:
                copy_verified(store, member, staged)
            on_member(member.size)
        fs.adding_new = False
        fs.write(root)
        paths = {str(i.SOPInstanceUID): Path(i.FileID).as_posix() for i in fs}
    finally:
        fs._stage["t"].cleanup()  # see _stage_in
    expected = {m.sop_instance_uid: m for m in members}
    for uid, relpath in paths.items():
        _check_written(root / relpath, expected[uid])
    _fsync_tree(root)
    return paths


def _check_written(path: Path, member: SetMember) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
        os.fsync(fh.fileno())
    if digest.hexdigest() != member.sha256:
        raise ExportError(
            f"the copy of object {member.sha256[:12]} at {path.name} reads back differently "
            "(damaged destination?); nothing was exported"
        )


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))
