"""The injected environment: everything with a side effect that core code may need.

Built once by each CLI from the real process (:meth:`Environment.from_process`) and passed down,
as httpie's ``Environment``; tests build their own with a fixed clock. Nothing in the code reads
``os.environ`` or the clock at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.crypto import DEFAULT_KDF_LOG_N, MAX_KDF_LOG_N, MIN_KDF_LOG_N
from common.errors import ConfigError

KDF_COST_VARIABLE = "CLINIC_ARCHIVE_KDF_LOG_N"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Environment:
    """Clock, process environment variables and the cost of new passphrase-sealed keys."""

    environ: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = _utc_now
    kdf_log_n: int = DEFAULT_KDF_LOG_N

    @classmethod
    def from_process(cls) -> Environment:
        """The real environment. ``CLINIC_ARCHIVE_KDF_LOG_N`` lowers the scrypt cost of keys
        created from now on (for tests and very slow laptops; never below 2^10)."""
        environ = dict(os.environ)
        raw = environ.get(KDF_COST_VARIABLE)
        log_n = DEFAULT_KDF_LOG_N
        if raw:
            try:
                log_n = int(raw)
            except ValueError:
                log_n = -1
            if not MIN_KDF_LOG_N <= log_n <= MAX_KDF_LOG_N:
                raise ConfigError(
                    f"{KDF_COST_VARIABLE}={raw!r} is not an integer in "
                    f"{MIN_KDF_LOG_N}..{MAX_KDF_LOG_N}",
                    hint=f"Unset {KDF_COST_VARIABLE} to use the default cost.",
                )
        return cls(environ=environ, kdf_log_n=log_n)

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return moment
