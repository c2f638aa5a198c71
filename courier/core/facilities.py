"""The clinics this courier visits: ``<home>/facilities.toml``.

One table per facility::

    [facility."clinic-042"]
    name = "Clinique du Lac"
    source = "/mnt/terminal"            # a folder, or "dicom://AET@host:port"
    rule = "AccessionNumber:A"          # see courier/core/selection.py
    receipts = "/mnt/terminal/receipts" # the clinic's folder for receipts (optional)
    capacity_threshold = "10%"          # or a size such as "20G" (optional)
    calling_aet = "COURIER"             # our AE title towards a DICOM node (optional)

The file holds no secret and no patient data. It is rewritten atomically on every change.
Settings for a visit are resolved by :func:`visit_settings` with the precedence
command-line option > environment variable > this file > built-in default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from common.bundle.format import valid_facility_id
from common.errors import ConfigError, FacilityExists, FacilityUnknown
from common.fsio import atomic_write
from courier.core.capacity import parse_threshold
from courier.core.selection import DEFAULT_RULE, parse_rule
from courier.core.source import DEFAULT_CALLING_AET, check_ae_title, parse_source

_FIELDS = ("name", "source", "rule", "receipts", "capacity_threshold", "calling_aet")


@dataclass(frozen=True)
class Facility:
    facility_id: str
    name: str
    source: str
    rule: str = DEFAULT_RULE
    receipts: str | None = None
    capacity_threshold: str | None = None
    calling_aet: str = DEFAULT_CALLING_AET

    def to_dict(self) -> dict[str, Any]:
        return {"facility_id": self.facility_id, **{k: getattr(self, k) for k in _FIELDS}}


def facilities_path(home: Path) -> Path:
    return home / "facilities.toml"


def check_facility(facility: Facility, *, where: str) -> Facility:
    """Validate every field; ConfigError names *where* and the field."""
    if not valid_facility_id(facility.facility_id):
        raise ConfigError(
            f"{where}: facility id {facility.facility_id!r} is not valid",
            hint="Use letters, digits, '.', '_' and '-' (at most 64), e.g. clinic-042.",
        )
    if not facility.source.strip():
        raise ConfigError(
            f"{where}: source is empty", hint="Give a folder or dicom://AET@host:port."
        )
    parse_source(facility.source, field=f"{where}: source")
    parse_rule(facility.rule, field=f"{where}: rule")
    if facility.capacity_threshold is not None:
        parse_threshold(facility.capacity_threshold, field=f"{where}: capacity_threshold")
    check_ae_title(facility.calling_aet, field=f"{where}: calling_aet")
    return facility


def load_facilities(home: Path) -> dict[str, Facility]:
    """Every configured facility by id (empty when the file does not exist)."""
    path = facilities_path(home)
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc})") from exc
    table = doc.get("facility", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [facility] must be a table of facilities")
    result = {}
    for facility_id, fields in table.items():
        where = f"{path} [facility.{facility_id}]"
        if not isinstance(fields, dict):
            raise ConfigError(f"{where} is not a table")
        unknown = sorted(set(fields) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r}")
        try:
            values = {k: (None if v is None else str(v)) for k, v in fields.items()}
            facility = Facility(facility_id=str(facility_id), **values)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigError(f"{where}: missing field ({exc})") from exc
        result[facility.facility_id] = check_facility(facility, where=where)
    return result


def _toml_string(value: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped, the rest as is."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _render(facilities: Mapping[str, Facility]) -> bytes:
    lines = ["# Clinics this courier visits; edit with `courier facility add|remove`.\n"]
    for facility_id in sorted(facilities):
        facility = facilities[facility_id]
        lines.append(f"\n[facility.{_toml_string(facility_id)}]\n")
        for name in _FIELDS:
            value = getattr(facility, name)
            if value is not None:
                lines.append(f"{name} = {_toml_string(value)}\n")
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError("a facility setting holds text that is not valid Unicode") from exc


def add_facility(home: Path, facility: Facility, *, replace_existing: bool = False) -> Facility:
    """Add (or with *replace_existing*, replace) a facility; the file is rewritten atomically."""
    check_facility(facility, where=f"facility {facility.facility_id}")
    facilities = load_facilities(home)
    if facility.facility_id in facilities and not replace_existing:
        raise FacilityExists(f"facility {facility.facility_id} is already configured")
    facilities[facility.facility_id] = facility
    home.mkdir(parents=True, exist_ok=True)
    atomic_write(facilities_path(home), _render(facilities))
    return facility


def remove_facility(home: Path, facility_id: str) -> Facility:
    facilities = load_facilities(home)
    removed = get_facility(home, facility_id, facilities)
    del facilities[facility_id]
    atomic_write(facilities_path(home), _render(facilities))
    return removed


def get_facility(
    home: Path, facility_id: str, facilities: Mapping[str, Facility] | None = None
) -> Facility:
    facilities = load_facilities(home) if facilities is None else facilities
    if facility_id not in facilities:
        raise _unknown(facility_id, facilities)
    return facilities[facility_id]


def _unknown(facility_id: str, facilities: Mapping[str, Facility]) -> FacilityUnknown:
    known = ", ".join(sorted(facilities)) or "none yet"
    return FacilityUnknown(
        f"facility {facility_id} is not configured on this laptop (configured: {known})"
    )


@dataclass(frozen=True)
class VisitOverrides:
    """Command-line options of one visit; None means "not given"."""

    source: str | None = None
    rule: str | None = None
    receipts: str | None = None
    capacity_threshold: str | None = None
    calling_aet: str | None = None


def visit_settings(home: Path, facility_id: str, overrides: VisitOverrides) -> Facility:
    """The facility's settings for one visit: options override the file.

    A facility that is not configured can still be visited when the options give a source
    (an ad-hoc visit); every other field then takes its default.
    """
    facilities = load_facilities(home)
    if facility_id in facilities:
        base = facilities[facility_id]
    elif overrides.source is not None:
        base = Facility(facility_id=facility_id, name="", source=overrides.source)
    else:
        raise _unknown(facility_id, facilities)
    given = {k: v for k, v in vars(overrides).items() if v is not None}
    return check_facility(replace(base, **given), where="the visit's options")


def receipts_for(home: Path, facility_id: str, override: Path | None) -> Path | None:
    """The clinic's receipts folder: *override* (an option) first, else the configured one.

    Without an override, the facility must be configured.
    """
    if override is not None:
        return override.expanduser()
    receipts = get_facility(home, facility_id).receipts
    return Path(receipts).expanduser() if receipts else None
