"""The archive's maintenance lock: one `center import` or `center check` at a time.

Two imports at once would race to catalog the same bundle, and a check during an import would
report as orphans the objects the import has stored but not yet cataloged. The lock is an
advisory ``flock`` on ``<archive>/.maintenance.lock``, released by the kernel when its holder
exits, even by a crash, so a killed import never leaves the archive locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from common.errors import ArchiveBusy

LOCK_FILE = ".maintenance.lock"


@contextlib.contextmanager
def maintenance_lock(root: Path, action: str) -> Iterator[None]:
    """Hold the archive's maintenance lock for *action*; ArchiveBusy if another holds it."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ArchiveBusy(f"cannot {action}: the archive {root} is busy") from exc
        yield
    finally:
        os.close(fd)
