"""What every center command gets from the top-level callback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from common.errors import ConfigError

if TYPE_CHECKING:
    from common.environment import Environment

PASSPHRASE_PREFIX = "CENTER"  # noqa: S105 - a variable-name prefix


@dataclass(frozen=True)
class CenterState:
    env: Environment
    archive: Path | None
    operator: str | None

    def require_archive(self) -> Path:
        if self.archive is None:
            raise ConfigError("no archive given", hint="Pass --archive PATH or set CENTER_ARCHIVE.")
        return self.archive

    def require_operator(self) -> str:
        """Commands that read or change patient data refuse to run without an operator."""
        if not self.operator or not self.operator.strip():
            raise ConfigError(
                "no operator named: every action at the center is logged by name",
                hint="Pass --operator NAME or set CENTER_OPERATOR.",
            )
        return self.operator.strip()


def state(ctx: typer.Context) -> CenterState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CenterState):
        raise RuntimeError("the command ran without its top-level callback")
    return obj
