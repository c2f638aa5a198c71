"""Byte sizes as people read and type them: ``1.5 GB``, ``20G``, ``512MiB``.

Suffixes K, M, G, T (with or without a trailing B) are powers of 1000, as drive makers and
file managers count; KiB, MiB, GiB, TiB are powers of 1024.
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(i?)B?\s*$", re.IGNORECASE)
_UNITS = ("bytes", "KB", "MB", "GB", "TB")


def parse_size(text: str) -> int:
    """Bytes in *text* (``20G``, ``1.5TB``, ``512MiB``, ``4096``); ValueError if malformed."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 20G, 500MB or 1.5T")
    power = " KMGT".index(match[2].upper() or " ")
    base = 1024 if match[3] else 1000
    return int(float(match[1]) * base**power)


def format_bytes(n: int) -> str:
    """``1.5 GB``-style text (decimal units, three significant digits)."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            if unit == "bytes":
                return f"{n:,} bytes"
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
