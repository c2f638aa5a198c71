"""The fault injector itself works (so crash tests built on it can fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_kill_at_first_write_kills_the_child(tmp_path: Path) -> None:
    """A child asked to die at its first counted operation dies by SIGKILL."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.faultinject",
            "1",
            "kill",
            "write,fsync,replace",
            "courier",
            "drive",
            "init",
            str(tmp_path),
        ],
        capture_output=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == -9
    assert not list(tmp_path.iterdir()) or not (tmp_path / ".courier-volume").exists()


def test_no_fault_past_the_last_operation(tmp_path: Path) -> None:
    """A fault point beyond the command's operations lets it finish normally."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.faultinject",
            "10000",
            "kill",
            "write,fsync,replace",
            "courier",
            "drive",
            "init",
            str(tmp_path),
        ],
        capture_output=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".courier-volume").is_file()
