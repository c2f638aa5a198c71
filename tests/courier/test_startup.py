"""What `courier` loads to start: a command pays for its own modules only (docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from courier.core.device import UnlockedDevice
from courier.core.scan import scan
from tests.conftest import COURIER_PASS, NOW, Terminal
from tests.courier.conftest import settings

# Run in a fresh interpreter: run `courier ARGS` (none: only import it), then print which of
# these modules it loaded.
_RUN = """
import json, sys
from courier.cli.app import main
if sys.argv[1:]:
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
heavy = ("pydicom", "rich", "courier.core.pull", "courier.core.deliver", "courier.core.copier")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def _loaded_by(*argv: str, home: Path) -> tuple[str, list[str]]:
    """(what the command printed, the heavy modules it loaded) in a new interpreter."""
    env = {
        **os.environ,
        "COURIER_HOME": str(home),
        "COURIER_PASSPHRASE": COURIER_PASS,
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output, _, loaded = done.stdout.rstrip("\n").rpartition("\n")
    return output, json.loads(loaded)


def test_starting_courier_loads_neither_pydicom_nor_rich_nor_the_pull(tmp_path: Path) -> None:
    """What every command pays to start (the app and its command modules) includes neither
    the DICOM parser, nor rich, nor the core of the other commands."""
    output, loaded = _loaded_by(home=tmp_path)
    assert output == ""
    assert loaded == []


def test_a_rescan_of_kept_headers_parses_nothing_and_loads_no_pydicom(
    device: UnlockedDevice, small_terminal: Terminal
) -> None:
    """A re-scan of an unchanged terminal whose selected headers the journal keeps opens no
    file, so it never loads pydicom; with --json it never loads rich either."""
    first = scan(device, settings(small_terminal.root), NOW)
    assert first.plan.parsed > 0 and first.plan.candidates
    output, loaded = _loaded_by(
        "scan",
        "clinic-1",
        "--source",
        str(small_terminal.root),
        "--json",
        home=device.device.home.root,
    )
    result = json.loads(output)
    assert result["files_parsed"] == 0
    assert result["studies"] == first.to_dict()["studies"]
    assert loaded == []
