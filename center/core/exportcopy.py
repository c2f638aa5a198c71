"""The archived objects an export hands over, copied with their sha256 checked against the
catalog (kept apart from the file-set module, which needs pydicom: a command that does not
export does not pay for importing it)."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from center.core.store import ObjectStore
from common.errors import IntegrityError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class SetMember:
    """One archived object to put in the set, with the catalog's word on its content."""

    sop_instance_uid: str
    sop_class_uid: str
    sha256: str
    size: int


def copy_verified(store: ObjectStore, member: SetMember, sink: BinaryIO) -> None:
    """Copy the stored object into *sink*, checking its sha256 against the catalog.

    Raises IntegrityError when the object is missing or its bytes are not the catalog's.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        with store.open(member.sha256) as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                sink.write(chunk)
    except FileNotFoundError as exc:
        raise IntegrityError(
            f"object {member.sha256[:12]} is in the catalog but missing from the store; "
            "nothing was exported"
        ) from exc
    if digest.hexdigest() != member.sha256 or size != member.size:
        raise IntegrityError(
            f"object {member.sha256[:12]} in the store does not match its catalog hash; "
            "nothing was exported"
        )


def remove_tree(path: Path) -> None:
    """Delete a partial export (a folder of ours: a work area or an unfinished file-set)."""
    shutil.rmtree(path, ignore_errors=True)
