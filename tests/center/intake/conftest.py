"""Fixtures for the center's intake: a pristine archive and drive made once per module.

Each test gets a copy (shutil.copytree) of an archive with one enrolled courier device and a
drive holding one sealed bundle of eight small synthetic instances, so the expensive parts
(terminal generation, key derivation, encryption) run once per module.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from center.core.archive import Archive, CenterKeys, open_archive
from center.core.devices import enroll
from center.core.importer import ImportReport, import_drive
from common.cards import load_center_card
from examples.clinic_terminal import TerminalSpec, generate_terminal
from tests.center.intake.kit import KitDevice, copy_tree, init_drive, new_device, write_bundle
from tests.conftest import CENTER_PASS, NOW

OBJECTS = 8


@dataclass
class World:
    """An archive, a drive with one sealed bundle, the device that signed it, the files."""

    root: Path
    archive_root: Path
    drive: Path
    device: KitDevice
    bundle: Path
    files: list[Path]

    @property
    def recipients(self) -> list[str]:
        card = load_center_card((self.archive_root / "center-card.json").read_bytes())
        return card.recipients

    def copy(self, into: Path) -> World:
        copy_tree(self.archive_root, into / "archive")
        copy_tree(self.drive, into / "drive")
        return World(
            into,
            into / "archive",
            into / "drive",
            copy.deepcopy(self.device),
            into / "drive" / self.bundle.relative_to(self.drive),
            self.files,
        )


@pytest.fixture(scope="module")
def terminal_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("kit-terminal")
    manifest = generate_terminal(
        root,
        TerminalSpec(
            seed=11,
            patients=2,
            studies=4,
            series_per_study=(1, 1),
            instances_per_series=(2, 2),
            pixel_bytes=1024,
        ),
    )
    files = [root / i.path for s in manifest.studies for i in s.instances]
    assert len(files) == OBJECTS
    return files


@pytest.fixture(scope="module")
def pristine(
    center_template: Path, tmp_path_factory: pytest.TempPathFactory, terminal_files: list[Path]
) -> World:
    root = tmp_path_factory.mktemp("pristine")
    archive_root = copy_tree(center_template, root / "archive")
    device = new_device()
    with open_archive(archive_root) as archive:
        enroll(archive, device.card(), operator="Enroller", now=NOW)
        recipients = archive.card.recipients
    drive = init_drive(root / "drive")
    bundle = write_bundle(drive, device, recipients, terminal_files)
    return World(root, archive_root, drive, device, bundle, terminal_files)


@pytest.fixture
def world(pristine: World, tmp_path: Path) -> World:
    """A private copy of the pristine archive and drive."""
    return pristine.copy(tmp_path)


@pytest.fixture
def archive(world: World) -> Iterator[Archive]:
    with open_archive(world.archive_root) as opened:
        yield opened


@pytest.fixture
def keys(archive: Archive) -> CenterKeys:
    return archive.unlock(CENTER_PASS)


def run_import(archive: Archive, keys: CenterKeys, drive: Path, **kwargs: object) -> ImportReport:
    return import_drive(archive, keys, drive, operator="Importer", now=NOW, **kwargs)  # type: ignore[arg-type]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def count(conn: sqlite3.Connection, table: str, where: str = "1 = 1") -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}").fetchone()[0])  # noqa: S608


def audit_rows(conn: sqlite3.Connection) -> list[dict[str, object]]:
    return [
        {**dict(r), "details": json.loads(r["details"])}
        for r in conn.execute("SELECT * FROM audit ORDER BY seq")
    ]
