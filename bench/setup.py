"""Build the benchmark data sets and a ready center + courier once per workspace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from examples.clinic_terminal import TerminalSpec, generate_terminal, spec_for_total_size

BIN = Path(sys.executable).parent
PASSPHRASES = {
    "CENTER": "bench-center",
    "CENTER_ESCROW": "bench-escrow",
    "CENTER_OPERATOR": "bench-operator",
    "COURIER": "bench-courier",
}


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "laptop"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, value in PASSPHRASES.items():
            env[f"{name}_PASSPHRASE"] = value
        env.update(
            COURIER_HOME=str(self.home),
            CENTER_ARCHIVE=str(self.archive),
            CENTER_OPERATOR="Bench Operator",
            # Key unlocking is not what is measured: a cheaper scrypt keeps runs comparable.
            CLINIC_ARCHIVE_KDF_LOG_N="14",
            NO_COLOR="1",
        )
        return env


def terminal(root: Path, name: str, spec: TerminalSpec) -> Path:
    """Generate (once) a synthetic terminal for *spec* under *root*/name."""
    target = root / name
    marker = target.with_suffix(".spec.json")
    wanted = json.dumps(spec.__dict__, default=str, sort_keys=True)
    if marker.exists() and marker.read_text() == wanted and target.is_dir():
        return target
    if target.exists():
        shutil.rmtree(target)
    generate_terminal(target, spec)
    marker.write_text(wanted)
    return target


def sized_terminal(root: Path, total_bytes: int, pixel_bytes: int, name: str) -> Path:
    """Every study flagged A, so the pull carries exactly the files the baselines copy."""
    spec = spec_for_total_size(total_bytes, seed=11, pixel_bytes=pixel_bytes)
    return terminal(root, name, replace(spec, a_fraction=1.0))


def cli(ws: Workspace, app: str, *args: str) -> None:
    subprocess.run([str(BIN / app), *args], env=ws.env(), check=True, stdout=subprocess.DEVNULL)


def prepare_workspace(root: Path) -> Workspace:
    """A center archive and an enrolled courier device (made once)."""
    ws = Workspace(root)
    if (ws.home / "device.toml").exists() and (ws.archive / "center.toml").exists():
        return ws
    for path in (ws.home, ws.archive):
        if path.exists():
            shutil.rmtree(path)
    root.mkdir(parents=True, exist_ok=True)
    cli(
        ws, "center", "init", str(ws.archive), "--name", "Bench Center", "--admin", "Bench Operator"
    )
    cli(
        ws,
        "courier",
        "init",
        "--operator",
        "Bench Courier",
        "--center-card",
        str(ws.archive / "center-card.json"),
    )
    cli(ws, "center", "courier", "enroll", str(ws.home / "device-card.json"))
    return ws


def reset_courier_state(ws: Workspace) -> None:
    """Forget every pull so the next one carries the whole terminal again."""
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (ws.home / name).unlink(missing_ok=True)
