"""The clinic terminal as a folder of files (a mounted share or the terminal's own disk)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common.errors import SourceError


@dataclass(frozen=True)
class SourceFile:
    relpath: str
    path: Path
    size: int
    mtime_ns: int


def walk_folder(root: Path) -> Iterator[SourceFile]:
    """Every regular file below *root* in path order; symbolic links are not followed."""
    if not root.is_dir():
        raise SourceError(f"the terminal folder {root} does not exist or is not a folder")
    yield from _walk(root, root)


def _walk(root: Path, directory: Path) -> Iterator[SourceFile]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(f"cannot list {directory}: {exc.strerror}") from exc
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(root, Path(entry.path))
        elif entry.is_file(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
            path = Path(entry.path)
            yield SourceFile(path.relative_to(root).as_posix(), path, st.st_size, st.st_mtime_ns)
