"""Where a clinic's studies come from: a folder, or a DICOM node reached over the network.

A folder is a mounted share or the terminal's own disk. A DICOM node is written
``dicom://AET@host:port`` (the node's AE title, its host name or address, its port); the
courier queries it at study level (C-FIND) and retrieves the selected instances (C-GET) on
the same association, so the node needs no route back to the laptop (courier/core/node.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from common.errors import ConfigError, SourceError

DEFAULT_CALLING_AET = "COURIER"
_NODE = re.compile(
    r"^dicom://(?P<aet>[^@]*)@(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})/?$"
)


class SourceFile(NamedTuple):
    """One file of a terminal folder (a named tuple: a walk makes 100,000 of them)."""

    relpath: str  # below the terminal root, with "/" separators
    root: Path
    size: int
    mtime_ns: int
    error: str = ""  # why the file could not even be examined ("" when it could)

    @property
    def path(self) -> Path:
        return self.root / self.relpath


@dataclass(frozen=True)
class FolderSource:
    root: Path

    def describe(self) -> str:
        return str(self.root)


@dataclass(frozen=True)
class NodeSource:
    """A DICOM node (PS3.7 DIMSE peer) and the AE title we present to it."""

    ae_title: str
    host: str
    port: int
    calling_aet: str = DEFAULT_CALLING_AET

    def describe(self) -> str:
        return f"dicom://{self.ae_title}@{self.host}:{self.port}"


def check_ae_title(text: str, *, field: str) -> str:
    """An Application Entity title (PS3.5 6.2, VR AE): 1-16 characters, no backslash or
    control character, not only spaces."""
    if not text.strip() or len(text) > 16 or "\\" in text or any(ord(c) < 32 for c in text):
        raise ConfigError(
            f"{field}: {text!r} is not a valid AE title",
            hint="An AE title has 1 to 16 characters, without backslash, e.g. ORTHANC.",
        )
    if not text.isascii():
        raise ConfigError(f"{field}: the AE title {text!r} must be plain ASCII")
    return text


def parse_source(
    text: str, *, field: str = "--source", calling_aet: str = DEFAULT_CALLING_AET
) -> FolderSource | NodeSource:
    """A folder path, or ``dicom://AET@host:port``; ConfigError names *field* if malformed."""
    if not text.startswith("dicom:"):
        try:
            return FolderSource(Path(text).expanduser())
        except RuntimeError as exc:  # "~name/...": no user of that name on this machine
            raise ConfigError(
                f"{field}: {text!r} starts with ~ but no user of that name has a home here",
                hint="Give the folder's full path.",
            ) from exc
    match = _NODE.match(text)
    if match is None:
        raise ConfigError(
            f"{field}: {text!r} is not dicom://AET@host:port",
            hint="For example dicom://CLINICPACS@192.168.1.20:104.",
        )
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise ConfigError(f"{field}: port {port} is outside 1..65535")
    host = match["host"].strip("[]")
    return NodeSource(check_ae_title(match["aet"], field=field), host, port, calling_aet)


SYMLINK_REASON = "a symbolic link: not followed (copy the file itself onto the terminal)"
SPECIAL_REASON = "not a regular file (a pipe, socket or device): not read"


def walk_folder(root: Path) -> Iterator[SourceFile]:
    """Every regular file below *root* in path order; symbolic links are not followed.

    A symbolic link or a special file (pipe, socket, device) is listed with its reason in
    ``error``, so it is reported as skipped rather than silently left behind.

    Plain strings all the way down (a re-visit walks 100,000 files: Path objects would be
    most of its cost); a file's Path is made only when it is opened.
    """
    if not root.is_dir():
        raise SourceError(f"the terminal folder {root} does not exist or is not a folder")
    yield from _walk(root, str(root), "")


def _walk(root: Path, directory: str, prefix: str) -> Iterator[SourceFile]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(f"cannot list {directory}: {exc.strerror}") from exc
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(root, entry.path, f"{prefix}{entry.name}/")
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                yield SourceFile(prefix + entry.name, root, st.st_size, st.st_mtime_ns)
            elif entry.is_symlink():  # reported, so an instance behind it is not silently left
                yield SourceFile(prefix + entry.name, root, 0, 0, SYMLINK_REASON)
            else:
                yield SourceFile(prefix + entry.name, root, 0, 0, SPECIAL_REASON)
        except OSError as exc:  # vanished or unreadable while listing: the caller skips it
            reason = f"unreadable ({exc.strerror or type(exc).__name__})"
            yield SourceFile(prefix + entry.name, root, 0, 0, reason)
