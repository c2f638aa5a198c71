"""A folder as one age-encrypted tar file, streamed: the plain tar never touches a disk.

Used by `center export --encrypt-to`: a thread writes the tar (POSIX pax, sorted members under
one top folder) into a pipe, and :func:`common.crypto.encrypt_to_file` reads the pipe into the
age file (with its guarded writer and fsync). The recipient opens it with the stock tools:
``age -d -i key.txt FILE.tar.age | tar x``.
"""

from __future__ import annotations

import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

from common.crypto import encrypt_to_file
from common.errors import ExportError
from common.fsio import fsync_dir


class _PipeReader:
    """The read end of a pipe, for encrypt_to_file."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "rb")

    def read(self, n: int = -1, /) -> bytes:
        return self._file.read(n)

    def close(self) -> None:
        self._file.close()


def encrypt_tree(root: Path, target: Path, recipient: str, name: str) -> None:
    """Stream a tar of *root* (as folder *name*) into the age file *target*, never in plain."""
    if target.exists():
        raise ExportError(f"{target} already exists; nothing was written")
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
                for path in _walk(root):
                    tar.add(
                        path, arcname=f"{name}/{path.relative_to(root).as_posix()}", recursive=False
                    )
        except (OSError, tarfile.TarError) as exc:
            failure.append(exc)

    producer = threading.Thread(target=produce, name="export-tar", daemon=True)
    producer.start()
    reader = _PipeReader(read_fd)
    try:
        encrypt_to_file(reader, target, [recipient])
    finally:
        reader.close()
        producer.join()
    if failure:
        target.unlink(missing_ok=True)
        raise ExportError(f"packing the export failed: {failure[0]}")
    fsync_dir(target.parent)


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        base = Path(folder)
        if base != root:
            yield base
        for name in sorted(files):
            yield base / name
