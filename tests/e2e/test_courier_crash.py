"""A pull killed anywhere, or meeting a full disk, resumes into one valid bundle.

Each case runs `courier pull` in a child process (tests/faultinject.py) that dies or gets
ENOSPC at the Nth file operation, then runs the same pull again normally. The drive must end
with exactly one sealed bundle that verifies and holds every A instance of the terminal once,
byte-identical after decryption with the center key, and no temporary file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from center.core.archive import CenterKeys
from common.bundle import format as fmt
from common.bundle.reader import read_reception
from common.environment import Environment
from common.fsio import TEMP_SUFFIX
from common.receipts import verify_receipt
from courier.core.courierlog import verify_block
from courier.core.device import CourierHome, init_device, load_device, unlock
from courier.core.drive import init_drive
from courier.core.pull import pull
from examples.clinic_terminal import generate_terminal
from tests.conftest import COURIER_PASS, NOW, Terminal
from tests.courier.conftest import SMALL, a_instances, decrypt_bundle, sealed_bundles, settings

ROOT = Path(__file__).resolve().parents[2]
MIN_KILL_POINTS = 20


@dataclass(frozen=True)
class Rig:
    template_home: Path
    terminal: Terminal
    trace: list[tuple[int, str, str]]  # (n, op, path) of an uninterrupted pull

    def phase_points(self, phase: str) -> list[int]:
        return [n for n, _op, path in self.trace if _phase(path) == phase]


def _phase(path: str) -> str:
    if "/data/" in path:
        return "copy"
    if "/bundles/" in path:
        return "seal"
    if "/receipts" in path:
        return "receipt"
    return "setup"


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COURIER_PASSPHRASE": COURIER_PASS,
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
        "COURIER_HOME": str(home),
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PYTHONPATH": str(ROOT),
    }


def _pull_args(case: Path, terminal: Terminal) -> list[str]:
    return [
        "courier",
        "pull",
        "clinic-1",
        "--source",
        str(terminal.root),
        "--drive",
        str(case / "drive"),
        "--receipts",
        str(case / "receipts"),
        "--json",
    ]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, center_template: Path) -> Rig:
    """A device home, a small terminal and the trace of one uninterrupted pull."""
    base = tmp_path_factory.mktemp("crash-rig")
    home = CourierHome(base / "home")
    init_device(
        home,
        operator="Crash Tester",
        center_card=(center_template / "center-card.json").read_bytes(),
        passphrase=COURIER_PASS,
        env=Environment(clock=lambda: NOW, kdf_log_n=10),
    )
    terminal = Terminal(base / "terminal", generate_terminal(base / "terminal", SMALL))
    case = _case(base / "trace-run", home.root)
    out = base / "trace.txt"
    done = subprocess.run(
        [sys.executable, "-m", "tests.courier.opcount", str(out), *_pull_args(case, terminal)],
        cwd=ROOT,
        env=_env(case / "home"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    trace = []
    for line in out.read_text().splitlines():
        n, op, path = line.split(" ", 2)
        trace.append((int(n), op, path))
    return Rig(home.root, terminal, trace)


def _case(case: Path, template_home: Path) -> Path:
    case.mkdir(parents=True)
    shutil.copytree(template_home, case / "home")
    (case / "drive").mkdir()
    return case


def _spread(points: list[int], count: int) -> list[int]:
    """*count* points evenly spread over *points* (all of them if there are fewer)."""
    if len(points) <= count:
        return points
    step = len(points) / count
    return sorted({points[int(i * step)] for i in range(count)})


def _run_children(
    cases: list[tuple[Path, list[str]]],
) -> Iterator[subprocess.CompletedProcess[str]]:
    """Run the faulty children, two at a time (they are independent)."""
    for start in range(0, len(cases), 2):
        batch = [
            (
                subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env=_env(case / "home"),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
                argv,
            )
            for case, argv in cases[start : start + 2]
        ]
        for proc, argv in batch:
            out, err = proc.communicate(timeout=120)
            yield subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _resume_and_check(case: Path, rig: Rig, keys: CenterKeys) -> None:
    device = unlock(load_device(CourierHome(case / "home")), COURIER_PASS)
    drive = init_drive(case / "drive")
    pull(
        device,
        settings=settings(rig.terminal.root, receipts=case / "receipts"),
        drive=drive,
        now=NOW,
    )
    folders = sorted((case / "drive" / fmt.BUNDLES_DIR).iterdir())
    bundles = sealed_bundles(case / "drive")
    assert folders == bundles and len(bundles) == 1, f"{case.name}: {folders}"
    objects = decrypt_bundle(bundles[0], keys.identity)
    expected = a_instances(rig.terminal)
    assert set(objects) == set(expected), case.name
    assert all(len(copies) == 1 for copies in objects.values()), case.name
    assert all(objects[uid][0] == data for uid, data in expected.items()), case.name
    assert not list((case / "drive").rglob(f"*{TEMP_SUFFIX}")), case.name
    assert not list((case / "receipts").rglob(f"*{TEMP_SUFFIX}")), case.name
    receipt = case / "receipts" / f"reception-{bundles[0].name}.json"
    assert verify_receipt(
        receipt.read_bytes(), Path(f"{receipt}.sig").read_bytes(), device.device.signing_public
    )
    log = read_reception(bundles[0], keys.identity)["courier_log"]
    assert verify_block(log, device.device.signing_public) == []
    assert log["entries"][-1]["content"]["bundle_id"] == bundles[0].name


def test_the_trace_covers_copy_and_seal(rig: Rig) -> None:
    """The uninterrupted pull's file operations fall in the copy, the seal and the receipt."""
    assert len(rig.phase_points("copy")) >= 10
    assert len(rig.phase_points("seal")) >= 10
    assert rig.phase_points("receipt")


def test_killed_anywhere_then_resumed_gives_one_valid_bundle(
    rig: Rig, tmp_path: Path, center_keys: CenterKeys
) -> None:
    """Kill points spread over setup and copy, at every step of the seal, and in the receipt
    all resume into a valid bundle."""
    points = (
        rig.phase_points("setup")[:2]
        + _spread(rig.phase_points("copy"), 12)
        + rig.phase_points("seal")  # every step of the seal: the commit point is there
        + _spread(rig.phase_points("receipt"), 3)
    )
    assert len(set(points)) >= MIN_KILL_POINTS
    assert len([p for p in points if p in rig.phase_points("copy")]) >= 10
    assert len([p for p in points if p in rig.phase_points("seal")]) >= 10
    cases = []
    for n in sorted(set(points)):
        case = _case(tmp_path / f"kill-{n:03d}", rig.template_home)
        argv = [
            sys.executable,
            "-m",
            "tests.faultinject",
            str(n),
            "kill",
            "write,fsync,replace",
            *_pull_args(case, rig.terminal),
        ]
        cases.append((case, argv))
    for (case, _), done in zip(cases, _run_children(cases), strict=True):
        assert done.returncode == -9, f"{case.name} was not killed: {done.stderr[-500:]}"
        _resume_and_check(case, rig, center_keys)


def test_disk_full_mid_copy_then_resumed_gives_one_valid_bundle(
    rig: Rig, tmp_path: Path, center_keys: CenterKeys
) -> None:
    """ENOSPC at writes and fsyncs of the copy stops the pull with drive-full; resuming
    after space is freed completes one valid bundle."""
    copy = rig.phase_points("copy")
    points = _spread(copy, 5)
    cases = []
    for n in points:
        case = _case(tmp_path / f"enospc-{n:03d}", rig.template_home)
        argv = [
            sys.executable,
            "-m",
            "tests.faultinject",
            str(n),
            "enospc",
            "write,fsync,replace",
            *_pull_args(case, rig.terminal),
        ]
        cases.append((case, argv))
    for (case, _), done in zip(cases, _run_children(cases), strict=True):
        assert done.returncode == 12, f"{case.name}: {done.stderr[-800:]}"
        assert "drive-full" in done.stderr and "Traceback" not in done.stderr
        _resume_and_check(case, rig, center_keys)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB file system standing in for a small drive (root only)."""
    mount = tmp_path / "tmpfs"
    if not _mount_tmpfs(mount, "8m"):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_real_small_drive_filling_up_mid_copy(
    rig: Rig, small_tmpfs: Path, tmp_path: Path, center_keys: CenterKeys
) -> None:
    """On a real tmpfs filled up during the copy the pull stops with drive-full naming the
    drive; once space is freed the same pull resumes into one valid bundle."""
    case = _case(tmp_path / "tmpfs-case", rig.template_home)
    shutil.rmtree(case / "drive")
    (case / "drive").symlink_to(small_tmpfs)
    ballast = small_tmpfs / "ballast.bin"
    n = rig.phase_points("copy")[len(rig.phase_points("copy")) // 2]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.courier.fillat",
            str(n),
            str(ballast),
            *_pull_args(case, rig.terminal),
        ],
        cwd=ROOT,
        env=_env(case / "home"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 12, done.stderr[-800:]
    assert "drive-full" in done.stderr and "filled up" in done.stderr
    ballast.unlink()
    _resume_and_check(case, rig, center_keys)


def test_real_small_drive_too_small_is_refused_before_copying(
    small_tmpfs: Path, tmp_path: Path, center_template: Path
) -> None:
    """A drive without room for the pull is refused up front with the amount needed."""
    ballast = small_tmpfs / "ballast.bin"
    with ballast.open("wb") as fh:
        fh.truncate(0)
        fh.write(b"\0" * (6 << 20))
    home = tmp_path / "home"
    init_device(
        CourierHome(home),
        operator="Op",
        center_card=(center_template / "center-card.json").read_bytes(),
        passphrase=COURIER_PASS,
        env=Environment(clock=lambda: NOW, kdf_log_n=10),
    )
    terminal = Terminal(tmp_path / "t", generate_terminal(tmp_path / "t", SMALL))
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "courier"),
            "pull",
            "clinic-1",
            "--source",
            str(terminal.root),
            "--drive",
            str(small_tmpfs),
            "--json",
        ],
        cwd=ROOT,
        env=_env(home),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 12
    assert "needs" in done.stderr and "more are needed" in done.stderr
    assert not list(small_tmpfs.rglob("*.age"))
