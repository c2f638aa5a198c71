"""Canonical JSON: the exact bytes that are hashed and signed (receipts, cards, audit entries).

Keys sorted, no insignificant white space, UTF-8, no floats (they have no single canonical
text); the same document always gives the same bytes on every machine.
"""

from __future__ import annotations

import json
from typing import Any


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("floats are not allowed in canonical JSON; use integers or strings")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_floats(item)


def canonical_json(document: Any) -> bytes:
    """Serialise *document* canonically."""
    _reject_floats(document)
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
