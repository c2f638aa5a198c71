"""The clinic terminal's capacity: measured at each visit, warned about when space runs low.

Free space on a terminal that fills up is the clinic's problem until the day its modality
stops storing images; the courier sees the terminal regularly and is the one to warn. The
threshold is configurable per facility (a percentage of the capacity or a size); by default
it is the larger of 10% of the capacity and the largest study seen at that facility, so a
warning comes while one more study of the usual kind still fits.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from courier.core.sizes import format_bytes, parse_size

DEFAULT_PERCENT = 10


@dataclass(frozen=True)
class Threshold:
    """A configured threshold: *percent* of the capacity, or a fixed number of *bytes*."""

    percent: int | None = None
    bytes: int | None = None

    def describe(self) -> str:
        if self.percent is not None:
            return f"{self.percent}% of capacity"
        return format_bytes(self.bytes or 0)


def parse_threshold(text: str, *, field: str = "--capacity-threshold") -> Threshold:
    """``15%`` or a size such as ``20G``; ConfigError naming *field* if malformed."""
    stripped = text.strip()
    try:
        if stripped.endswith("%"):
            percent = int(stripped[:-1])
            if not 0 <= percent <= 100:
                raise ValueError("a percentage is between 0 and 100")
            return Threshold(percent=percent)
        return Threshold(bytes=parse_size(stripped))
    except ValueError as exc:
        raise ConfigError(
            f"{field}: {text!r} is not a threshold ({exc})",
            hint="Give a percentage of the terminal's capacity (15%) or a size (20G).",
        ) from exc


@dataclass(frozen=True)
class DiskUsage:
    total: int
    used: int
    free: int


def measure_disk(path: Path) -> DiskUsage:
    """Capacity, used and free bytes of the filesystem holding *path*."""
    usage = shutil.disk_usage(path)
    return DiskUsage(usage.total, usage.used, usage.free)


@dataclass(frozen=True)
class Capacity:
    """What the visit measured, and whether to warn (no I/O)."""

    total_bytes: int
    used_bytes: int
    free_bytes: int
    dicom_bytes: int
    largest_study_bytes: int
    threshold_bytes: int
    threshold_rule: str

    @property
    def low(self) -> bool:
        return self.free_bytes < self.threshold_bytes

    def warning(self) -> str | None:
        """The operator's and the clinic's warning text, or None when space is sufficient."""
        if not self.low:
            return None
        return (
            f"The terminal is running out of space: {format_bytes(self.free_bytes)} free of "
            f"{format_bytes(self.total_bytes)}, below the warning threshold of "
            f"{format_bytes(self.threshold_bytes)} ({self.threshold_rule}). Free space on the "
            "terminal (for example delete studies already confirmed stored at the center) "
            "before it refuses new images."
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "low": self.low}


def assess(
    usage: DiskUsage, dicom_bytes: int, largest_study: int, configured: Threshold | None
) -> Capacity:
    """Apply the threshold rule to what was measured."""
    if configured is not None and configured.percent is not None:
        threshold, rule = usage.total * configured.percent // 100, configured.describe()
    elif configured is not None:
        threshold, rule = configured.bytes or 0, f"configured {configured.describe()}"
    else:
        share = usage.total * DEFAULT_PERCENT // 100
        if largest_study > share:
            threshold, rule = largest_study, "the largest study seen at this facility"
        else:
            threshold, rule = share, f"{DEFAULT_PERCENT}% of capacity"
    return Capacity(
        usage.total, usage.used, usage.free, dicom_bytes, largest_study, threshold, rule
    )
