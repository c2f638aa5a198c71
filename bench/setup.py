"""Build the benchmark data sets and a ready center + courier once per workspace."""

from __future__ import annotations

import compileall
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

    @property
    def archive_template(self) -> Path:
        """The archive as it was right after enrolment: copied afresh for every import run."""
        return self.root / "archive-template"

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


def byte_compile_project() -> None:
    """Compile the project's packages as an installation does (pip compiles at install): in a
    workspace where PYTHONDONTWRITEBYTECODE is set, every measured command would otherwise
    compile our modules again, some 40 ms of start-up that no installed courier or center
    pays."""
    project = Path(__file__).resolve().parent.parent
    for package in ("common", "courier", "center"):
        compileall.compile_dir(project / package, quiet=1)


def terminal(root: Path, name: str, spec: TerminalSpec) -> Path:
    """Generate (once) a synthetic terminal for *spec* under *root*/name."""
    target = root / name
    marker = target.parent / f"{target.name}.spec.json"
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


SMALL_FILES_PER_STUDY = 10  # two series of five instances


def small_terminal(root: Path, files: int, pixel_bytes: int = 8 << 10) -> Path:
    """A terminal of *files* small instances (about 9 KB each), 60 % of its studies flagged A
    (the generator's default mix), for the scan measurements."""
    studies = max(1, files // SMALL_FILES_PER_STUDY)
    spec = TerminalSpec(
        seed=21,
        patients=max(1, studies // 2),
        studies=studies,
        series_per_study=(2, 2),
        instances_per_series=(5, 5),
        pixel_bytes=pixel_bytes,
    )
    return terminal(root, f"terminal-small-{files}", spec)


def cli(ws: Workspace, app: str, *args: str) -> None:
    subprocess.run([str(BIN / app), *args], env=ws.env(), check=True, stdout=subprocess.DEVNULL)


def prepare_workspace(root: Path) -> Workspace:
    """A center archive and an enrolled courier device (made once), and a copy of the archive
    as it is then (the template every import run starts from)."""
    ws = Workspace(root)
    if (ws.home / "device.toml").exists() and (ws.archive_template / "center.toml").exists():
        return ws
    for path in (ws.home, ws.archive, ws.archive_template):
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
    shutil.copytree(ws.archive, ws.archive_template, symlinks=True)
    return ws


def fresh_archive(ws: Workspace) -> None:
    """Replace the workspace's archive with a copy of the template (nothing imported)."""
    if ws.archive.exists():
        shutil.rmtree(ws.archive)
    shutil.copytree(ws.archive_template, ws.archive, symlinks=True)


def bundle_drive(ws: Workspace, term: Path, name: str) -> Path:
    """A drive holding one sealed bundle of every file of *term* (made once by a pull)."""
    drive = ws.root / name
    marker = drive.parent / f"{drive.name}.ready"
    if marker.exists() and drive.is_dir():
        return drive
    if drive.exists():
        shutil.rmtree(drive)
    drive.mkdir(parents=True)
    reset_courier_state(ws)
    cli(ws, "courier", "pull", "bench-clinic", "--source", str(term), "--drive", str(drive))
    marker.write_text(str(term))
    return drive


def clear_drive_returns(drive: Path) -> None:
    """Remove what an import run left on the drive (its outbox documents), so every run
    sees the same drive."""
    for name in ("outbox", "returns"):
        if (drive / name).exists():
            shutil.rmtree(drive / name)


def reset_courier_state(ws: Workspace) -> None:
    """Forget every pull so the next one carries the whole terminal again."""
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (ws.home / name).unlink(missing_ok=True)
