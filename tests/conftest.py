"""Shared fixtures: a fixed clock, cheap key derivation, a center, a courier, a terminal."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from center.core.archive import Archive, CenterKeys, init_archive, open_archive
from center.core.devices import enroll
from center.core.operators import active_admins, add_operator
from common.environment import Environment
from courier.core.device import CourierHome, UnlockedDevice, init_device, load_device, unlock
from courier.core.drive import Drive, init_drive
from examples.clinic_terminal import TerminalManifest, TerminalSpec, generate_terminal

CENTER_PASS = "center-test-passphrase"
ESCROW_PASS = "escrow-test-passphrase"
COURIER_PASS = "courier-test-passphrase"
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def require_tool(name: str) -> str:
    """Path of an external peer program; skip when missing, fail under CI=true."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required under CI=true but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def env() -> Environment:
    return Environment(environ={}, clock=lambda: NOW, kdf_log_n=10)


@pytest.fixture(scope="session")
def center_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One archive with keys, made once per session (the escrow's age scrypt is slow)."""
    root = tmp_path_factory.mktemp("template") / "archive"
    init_archive(
        root,
        center_name="Test Center",
        passphrase=CENTER_PASS,
        escrow_passphrase=ESCROW_PASS,
        env=Environment(clock=lambda: NOW, kdf_log_n=10),
    )
    return root


@pytest.fixture
def archive_root(center_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    shutil.copytree(center_template, root)
    return root


@pytest.fixture
def archive(archive_root: Path) -> Iterator[Archive]:
    with open_archive(archive_root) as opened:
        yield opened


@pytest.fixture
def center_keys(archive: Archive) -> CenterKeys:
    return archive.unlock(CENTER_PASS)


@pytest.fixture
def courier_home(archive_root: Path, tmp_path: Path, env: Environment) -> CourierHome:
    home = CourierHome(tmp_path / "laptop")
    init_device(
        home,
        operator="Test Operator",
        center_card=(archive_root / "center-card.json").read_bytes(),
        passphrase=COURIER_PASS,
        env=env,
    )
    return home


@pytest.fixture
def device(courier_home: CourierHome, archive: Archive) -> UnlockedDevice:
    """An unlocked courier device, enrolled at the center."""
    enroll(archive, courier_home.device_card.read_bytes(), operator="Enroller", now=NOW)
    return unlock(load_device(courier_home), COURIER_PASS)


@pytest.fixture
def drive(tmp_path: Path) -> Drive:
    root = tmp_path / "drive"
    root.mkdir()
    return init_drive(root)


@dataclass
class Terminal:
    root: Path
    manifest: TerminalManifest


@pytest.fixture
def terminal(tmp_path: Path) -> Terminal:
    root = tmp_path / "terminal"
    manifest = generate_terminal(
        root, TerminalSpec(seed=3, patients=4, studies=8, pixel_bytes=4096)
    )
    return Terminal(root, manifest)


OPERATOR_PASS = "operator-test-passphrase"


def add_test_operator(archive_root: Path, name: str, role: str = "admin") -> dict[str, str]:
    """Create the operator *name* in the archive; the variables that authenticate as it."""
    with open_archive(archive_root) as opened:
        authorised_by = "admin" if active_admins(opened.conn) else "init"
        add_operator(
            opened.conn,
            name,
            role=role,
            passphrase=OPERATOR_PASS,
            by="conftest",
            now=NOW,
            log_n=10,
            authorised_by=authorised_by,
        )
    return {"CENTER_OPERATOR": name, "CENTER_OPERATOR_PASSPHRASE": OPERATOR_PASS}


@pytest.fixture
def center_operator(archive_root: Path) -> dict[str, str]:
    """An administrator "Cli Tester" in the archive, and the variables that log in as it."""
    return add_test_operator(archive_root, "Cli Tester")
