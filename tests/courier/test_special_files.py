"""Files on the terminal that are not regular files (found by reliability/hostile.py).

A symbolic link or a named pipe on the terminal used to be passed over in silence; an instance
behind a link was then neither carried nor reported. Each is now skipped with its reason.
"""

from __future__ import annotations

import os

from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.pull import pull
from courier.core.source import SPECIAL_REASON, SYMLINK_REASON
from tests.conftest import NOW, Terminal
from tests.courier.conftest import settings


def test_symbolic_link_and_named_pipe_are_reported_as_skipped(
    device: UnlockedDevice, drive: Drive, small_terminal: Terminal
) -> None:
    """A link to an A instance and a named pipe are in the skipped list with their reasons,
    and the pull neither follows the link nor blocks on the pipe."""
    root = small_terminal.root
    target = root / small_terminal.manifest.a_studies[0].instances[0].path
    (root / "linked.dcm").symlink_to(target)
    os.mkfifo(root / "pipe.dcm")
    result = pull(device, settings=settings(root), drive=drive, now=NOW)
    skipped = {s.relpath: s.reason for s in result.plan.skipped}
    assert skipped["linked.dcm"] == SYMLINK_REASON
    assert skipped["pipe.dcm"] == SPECIAL_REASON
    assert result.plan.files_seen == sum(1 for p in root.rglob("*") if not p.is_dir())
