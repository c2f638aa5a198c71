"""What every courier command gets from the top-level callback."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import typer

from common.environment import Environment
from courier.core.device import CourierHome

PASSPHRASE_PREFIX = "COURIER"  # noqa: S105 - a variable-name prefix


@dataclass(frozen=True)
class CourierState:
    env: Environment
    home: CourierHome


def default_home(environ: dict[str, str] | os._Environ[str]) -> Path:
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "clinic-courier"


def state(ctx: typer.Context) -> CourierState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CourierState):
        raise RuntimeError("the command ran without its top-level callback")
    return obj
