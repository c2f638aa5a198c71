"""Which instances a clinic flagged for archiving (DESIGN.md s3). Pure, no I/O.

The seed marks data sets to archive with a leading "A" in their identification ("B": keep at
the clinic), or with a flag in the accompanying information. A facility's rule is one of:

* ``TAG:PREFIX`` -- the element's value starts with PREFIX (case-insensitive). TAG is a DICOM
  keyword (``AccessionNumber``, ``StudyID`` ...), a tag number ``(gggg,eeee)``, or a private
  element ``(gggg,CREATOR,ee)``. The default is ``AccessionNumber:A``.
* ``flag-file:PATH`` -- the clinic lists the studies to archive in a text file (format in
  :class:`FlagFileRule` and docs/how-to/courier-selection.md); PATH is relative to the terminal
  folder unless absolute.

A rule sees an instance (or, for a DICOM node, a study) as a mapping from
:attr:`~common.dicomhdr.TagRef.key` to the element's value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from common.dicomhdr import HEADER_KEYWORDS, InstanceHeader, TagRef
from common.errors import ConfigError

DEFAULT_RULE = "AccessionNumber:A"
FLAG_FILE = "flag-file"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")
_ACCESSION = "AccessionNumber"
_STUDY_UID = "StudyInstanceUID"


class SelectionRule(Protocol):
    """What every rule offers the planner."""

    def describe(self) -> str:
        """One line for the operator and the receipt."""

    def digest(self) -> str:
        """Changes whenever the rule could select differently (fast-path invalidation)."""

    def tags(self) -> tuple[TagRef, ...]:
        """The elements whose values :meth:`selects` reads."""

    def selects(self, values: Mapping[str, str]) -> bool:
        """True when the instance or study with these element values is flagged."""


def header_values(header: InstanceHeader) -> dict[str, str]:
    """The standard header fields as a keyword -> value mapping, for :meth:`selects`."""
    return {keyword: getattr(header, name) for name, keyword in HEADER_KEYWORDS.items()}


@dataclass(frozen=True)
class PrefixRule:
    """The element named by *tag* starts with *prefix* (case-insensitive, spaces trimmed)."""

    tag: TagRef
    prefix: str

    def describe(self) -> str:
        return f"{self.tag.key} starts with {self.prefix!r}"

    def digest(self) -> str:
        return hashlib.sha256(f"prefix\0{self.tag.key}\0{self.prefix}".encode()).hexdigest()

    def tags(self) -> tuple[TagRef, ...]:
        return (self.tag,)

    def selects(self, values: Mapping[str, str]) -> bool:
        value = values.get(self.tag.key, "")
        return value.strip().upper().startswith(self.prefix.upper())


@dataclass(frozen=True)
class FlagFileRule:
    """Studies listed in a text file the clinic writes.

    Format: UTF-8 text, one entry per line; blank lines and lines starting with ``#`` are
    ignored; spaces around an entry are ignored. An entry made only of digits and dots with at
    least one dot is a Study Instance UID; anything else is an Accession Number (compared
    exactly). A study is selected when its Study Instance UID or its Accession Number is listed.
    """

    path: str
    accessions: frozenset[str] = frozenset()
    study_uids: frozenset[str] = frozenset()
    present: bool = True

    @classmethod
    def from_text(cls, path: str, text: str | None) -> FlagFileRule:
        """The rule for the file's content (``None``: the file is absent, nothing selected)."""
        if text is None:
            return cls(path, present=False)
        accessions: set[str] = set()
        uids: set[str] = set()
        for line in text.splitlines():
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            (uids if _UID.match(entry) else accessions).add(entry)
        return cls(path, frozenset(accessions), frozenset(uids))

    def describe(self) -> str:
        if not self.present:
            return f"studies listed in the flag file {self.path} (absent: nothing selected)"
        count = len(self.accessions) + len(self.study_uids)
        return f"studies listed in the flag file {self.path} ({count} entries)"

    def digest(self) -> str:
        body = "\n".join(sorted(self.accessions)) + "\0" + "\n".join(sorted(self.study_uids))
        return hashlib.sha256(f"flag\0{self.path}\0{self.present}\0{body}".encode()).hexdigest()

    def tags(self) -> tuple[TagRef, ...]:
        return (TagRef(keyword=_ACCESSION), TagRef(keyword=_STUDY_UID))

    def selects(self, values: Mapping[str, str]) -> bool:
        return (
            values.get(_STUDY_UID, "").strip() in self.study_uids
            or values.get(_ACCESSION, "").strip() in self.accessions
        )


@dataclass(frozen=True)
class RuleSpec:
    """A rule as configured (text form), before a flag file is read."""

    text: str

    @property
    def flag_file(self) -> str | None:
        kind, sep, rest = self.text.partition(":")
        return rest.strip() if sep and kind.strip() == FLAG_FILE else None


def parse_rule(text: str, *, field: str = "--rule") -> RuleSpec:
    """Check a rule's text form; raise ConfigError naming *field* when it is invalid."""
    text = text.strip()
    spec = RuleSpec(text)
    if spec.flag_file is not None:
        if not spec.flag_file:
            raise ConfigError(f"{field}: `flag-file:` needs a file name", hint=_RULE_HINT)
        return spec
    prefix_rule(spec, field=field)
    return spec


_RULE_HINT = (
    "Write TAG:PREFIX (e.g. AccessionNumber:A, StudyID:ARC, (0011,1010):A, "
    "(0011,ACME,10):Y) or flag-file:PATH."
)


def prefix_rule(spec: RuleSpec, *, field: str = "--rule") -> PrefixRule:
    """The :class:`PrefixRule` of a ``TAG:PREFIX`` spec."""
    text = spec.text
    cut = text.index(")") + 1 if text.startswith("(") and ")" in text else text.find(":")
    tag_text, sep, prefix = text[:cut], text[cut : cut + 1], text[cut + 1 :]
    if cut <= 0 or sep != ":":
        raise ConfigError(f"{field}: {text!r} is not TAG:PREFIX", hint=_RULE_HINT)
    try:
        tag = TagRef.parse(tag_text)
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}", hint=_RULE_HINT) from exc
    if not prefix.strip():
        raise ConfigError(f"{field}: the prefix after {tag.key}: is empty", hint=_RULE_HINT)
    return PrefixRule(tag, prefix.strip())


def build_rule(spec: RuleSpec, flag_text: str | None = None) -> SelectionRule:
    """The rule of *spec*; for a flag-file rule, *flag_text* is the file's content or None."""
    if spec.flag_file is not None:
        return FlagFileRule.from_text(spec.flag_file, flag_text)
    return prefix_rule(spec)
