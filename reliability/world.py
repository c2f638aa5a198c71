"""The world the scenarios run in: a center archive, courier devices, terminals and drives.

Templates are built once per run (keys are the slow part) and copied into each trial's own
folder. The two CLIs run as child processes exactly as an operator runs them, optionally under
tests/faultinject.py, which kills the child (SIGKILL) or fails its Nth write, fsync or rename
with ENOSPC or EIO.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from center.core.archive import init_archive, open_archive
from center.core.devices import enroll
from center.core.operators import add_operator
from common.environment import Environment
from courier.core.device import CourierHome, init_device
from examples.clinic_terminal import TerminalManifest, TerminalSpec, generate_terminal

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
# Passphrases are searched for by the leak scenario: each is unlike anything else in the run.
CENTER_PASS = "rel-center-QWx7v2-passphrase"
ESCROW_PASS = "rel-escrow-Lm4k9T-passphrase"
COURIER_PASS = "rel-courier-Zp8r3N-passphrase"
OPERATOR_PASS = "rel-operator-Hy6c1D-passphrase"
OPERATOR = "Reliability Operator"
PASSPHRASES = (CENTER_PASS, ESCROW_PASS, COURIER_PASS, OPERATOR_PASS)
CHILD_TIMEOUT = 180.0  # seconds; a child that takes longer is a hang and a failure

# Terminal shapes: small enough to run hundreds of times, rich enough to have A and B studies,
# several series and instances, and non-ASCII names.
CRASH_SPEC = TerminalSpec(
    seed=71,
    patients=3,
    studies=6,
    series_per_study=(1, 2),
    instances_per_series=(1, 2),
    pixel_bytes=1536,
)
SECOND_SPEC = TerminalSpec(
    seed=72,
    patients=2,
    studies=3,
    series_per_study=(1, 2),
    instances_per_series=(1, 2),
    pixel_bytes=1024,
    a_fraction=0.7,
)
THIRD_SPEC = TerminalSpec(
    seed=73,
    patients=2,
    studies=2,
    series_per_study=(1, 1),
    instances_per_series=(1, 3),
    pixel_bytes=2048,
    a_fraction=0.7,
)


@dataclass(frozen=True)
class Terminal:
    root: Path
    manifest: TerminalManifest

    def a_instances(self) -> dict[str, bytes]:
        """SOP Instance UID -> bytes of every A instance."""
        return {
            inst.sop_instance_uid: (self.root / inst.path).read_bytes()
            for study in self.manifest.a_studies
            for inst in study.instances
        }


def make_terminal(root: Path, spec: TerminalSpec, *, start_index: int = 0) -> Terminal:
    return Terminal(root, generate_terminal(root, spec, start_index=start_index))


@dataclass(frozen=True)
class Done:
    """A finished child process."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.returncode == -9

    def tail(self, n: int = 600) -> str:
        return (self.stderr or self.stdout)[-n:]


@dataclass(frozen=True)
class Fault:
    """What tests/faultinject.py does to the child: at the *n*th counted operation."""

    n: int
    kind: str = "kill"  # kill | enospc | eio
    ops: str = "write,fsync,replace"

    def describe(self) -> str:
        return f"{self.kind}-{self.ops.replace(',', '+')}-{self.n}"


@dataclass
class Case:
    """One trial's folder: a copy of the templates it needs, and the environment of its CLIs."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def drive(self) -> Path:
        return self.root / "drive"

    @property
    def receipts(self) -> Path:
        return self.root / "receipts"

    def run(
        self,
        app: str,
        *args: str,
        fault: Fault | None = None,
        debug: bool = False,
        timeout: float = CHILD_TIMEOUT,
    ) -> Done:
        return run_cli(app, list(args), self.env, fault=fault, debug=debug, timeout=timeout)


def cli_env(case: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The variables of a trial's CLIs: passphrases from variables, cheap new keys, no colour."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("COURIER_", "CENTER_"))},
        "COURIER_HOME": str(case / "home"),
        "COURIER_PASSPHRASE": COURIER_PASS,
        "CENTER_ARCHIVE": str(case / "archive"),
        "CENTER_PASSPHRASE": CENTER_PASS,
        "CENTER_OPERATOR": OPERATOR,
        "CENTER_OPERATOR_PASSPHRASE": OPERATOR_PASS,
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PYTHONPATH": str(ROOT),
        **(extra or {}),
    }


def run_cli(
    app: str,
    args: list[str],
    env: dict[str, str],
    *,
    fault: Fault | None = None,
    debug: bool = False,
    timeout: float = CHILD_TIMEOUT,
) -> Done:
    """Run `courier` or `center` with *args*, under *fault* if given; never raises on exit."""
    flags = ["--debug"] if debug else []
    if fault is None:
        argv = [str(BIN / app), *flags, *args]
    else:
        argv = [
            sys.executable,
            "-m",
            "tests.faultinject",
            str(fault.n),
            fault.kind,
            fault.ops,
            app,
            *flags,
            *args,
        ]
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Done(argv, -1000, out, f"TIMEOUT after {timeout:.0f} s", time.monotonic() - start)
    return Done(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@dataclass(frozen=True)
class Center:
    """A template archive with keys, an operator and enrolled devices."""

    root: Path


def make_center(root: Path) -> Center:
    """An archive with keys (cheap KDF), the run's administrator, nothing imported."""
    init_archive(
        root,
        center_name="Reliability Center",
        passphrase=CENTER_PASS,
        escrow_passphrase=ESCROW_PASS,
        env=Environment(clock=lambda: NOW, kdf_log_n=10),
    )
    with open_archive(root) as opened:
        add_operator(
            opened.conn,
            OPERATOR,
            role="admin",
            passphrase=OPERATOR_PASS,
            by="reliability",
            now=NOW,
            log_n=10,
            authorised_by="init",
        )
    return Center(root)


def make_device(
    home: Path, center: Path, *, operator: str = "Field Tester", enrol: bool = True
) -> CourierHome:
    """A courier device whose center card is *center*'s, enrolled there unless told not to."""
    courier_home = CourierHome(home)
    init_device(
        courier_home,
        operator=operator,
        center_card=(center / "center-card.json").read_bytes(),
        passphrase=COURIER_PASS,
        env=Environment(clock=lambda: NOW, kdf_log_n=10),
    )
    if enrol:
        with open_archive(center) as opened:
            enroll(opened, courier_home.device_card.read_bytes(), operator=OPERATOR, now=NOW)
    return courier_home


def pull_args(facility: str, terminal: Path, drive: Path, receipts: Path) -> list[str]:
    return [
        "pull",
        facility,
        "--source",
        str(terminal),
        "--drive",
        str(drive),
        "--receipts",
        str(receipts),
        "--json",
    ]
