"""The terminal's capacity: thresholds, warnings and sizes."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from courier.core.capacity import DiskUsage, Threshold, assess, parse_threshold
from courier.core.sizes import format_bytes, parse_size

GB = 1000**3
USAGE = DiskUsage(total=100 * GB, used=95 * GB, free=5 * GB)


def test_default_threshold_is_ten_percent_of_capacity() -> None:
    """With small studies the default threshold is 10% of the capacity."""
    capacity = assess(USAGE, dicom_bytes=50 * GB, largest_study=GB, configured=None)
    assert capacity.threshold_bytes == 10 * GB and capacity.low
    assert "10% of capacity" in capacity.threshold_rule


def test_default_threshold_is_the_largest_study_when_larger() -> None:
    """A facility whose largest study exceeds 10% warns at that study's size."""
    usage = DiskUsage(total=100 * GB, used=80 * GB, free=20 * GB)
    capacity = assess(usage, dicom_bytes=0, largest_study=30 * GB, configured=None)
    assert capacity.threshold_bytes == 30 * GB and capacity.low
    assert "largest study" in capacity.threshold_rule


def test_configured_percentage_and_size() -> None:
    """A configured percentage or size replaces the default."""
    assert assess(USAGE, 0, 0, Threshold(percent=3)).threshold_bytes == 3 * GB
    assert not assess(USAGE, 0, 0, Threshold(percent=3)).low
    assert assess(USAGE, 0, 0, Threshold(bytes=6 * GB)).low


def test_warning_names_free_space_and_threshold() -> None:
    """The warning says how much is free, of what, and the threshold that was crossed."""
    warning = assess(USAGE, 0, 0, None).warning()
    assert warning is not None and "5 GB free of 100 GB" in warning and "10 GB" in warning
    assert assess(DiskUsage(100 * GB, 10 * GB, 90 * GB), 0, 0, None).warning() is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("15%", Threshold(percent=15)),
        ("20G", Threshold(bytes=20 * GB)),
        ("1.5TB", Threshold(bytes=1500 * GB)),
        ("512MiB", Threshold(bytes=512 << 20)),
    ],
)
def test_thresholds_parse(text: str, value: Threshold) -> None:
    """Percentages and sizes with decimal or binary units parse."""
    assert parse_threshold(text) == value


@pytest.mark.parametrize("text", ["", "ten", "150%", "-3G", "5 parsecs"])
def test_bad_thresholds_name_the_option(text: str) -> None:
    """A malformed threshold is a config error naming the option."""
    with pytest.raises(ConfigError, match="--capacity-threshold"):
        parse_threshold(text)


def test_sizes_print_readably() -> None:
    """Byte counts print with a decimal unit and three significant digits."""
    assert format_bytes(999) == "999 bytes"
    assert format_bytes(1_500_000) == "1.5 MB"
    assert format_bytes(271_000_000_000) == "271 GB"
    assert parse_size("4096") == 4096
