"""What `center` loads to start: a command pays for its own modules only."""

from __future__ import annotations

import json
import subprocess
import sys

# `center` imports every command module to start any one command (and `center --help` only
# that): none of them may load the archive or another command's core at import
_RUN = """
import json, sys
import center.cli.app
heavy = (
    "center.core.archive", "center.core.catalog", "center.core.importer", "center.core.export",
    "center.core.pacs", "center.core.expiry", "center.core.purge", "center.core.retention_apply",
    "common.environment", "pydicom", "pynetdicom",
)
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_starting_center_loads_neither_the_archive_nor_the_commands_cores() -> None:
    """Importing the app and its command modules loads no archive, catalog or command core."""
    done = subprocess.run([sys.executable, "-c", _RUN], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
