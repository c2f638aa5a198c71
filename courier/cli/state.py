"""What every courier command gets from the top-level callback."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import typer

from common.boundary import read_passphrase
from common.environment import Environment
from courier.core.device import CourierHome, UnlockedDevice, load_device, unlock
from courier.core.drives import DriveProbe, UdevProbe

PASSPHRASE_PREFIX = "COURIER"  # noqa: S105 - a variable-name prefix


@dataclass(frozen=True)
class CourierState:
    env: Environment
    home: CourierHome
    probe: DriveProbe = field(default_factory=UdevProbe)

    def unlock(self) -> UnlockedDevice:
        """The device, opened with the passphrase from the environment or a prompt."""
        device = load_device(self.home)
        passphrase = read_passphrase(
            self.env.environ, PASSPHRASE_PREFIX, prompt="Device passphrase"
        )
        return unlock(device, passphrase)


def default_home(environ: dict[str, str] | os._Environ[str]) -> Path:
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "clinic-courier"


def state(ctx: typer.Context) -> CourierState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CourierState):
        raise RuntimeError("the command ran without its top-level callback")
    return obj
