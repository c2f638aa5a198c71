"""What a keyless verification report means for the import of a bundle.

Bundle-level defects refuse the whole bundle, each with its own error: a format this software
does not read, a signature that does not verify, a tag file (bag-info, manifests, index,
reception log) missing or not matching the signed tag manifest, a file nobody signed. A bundle
without its signature is unsealed: listed and left alone. Defects of single payload objects
(missing, truncated, altered) do not stop the import: those objects are quarantined and the
bundle is imported partially.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.bundle import format as fmt
from common.bundle import verify as v
from common.bundle.reader import BundleIndex
from common.errors import (
    BundleDamaged,
    BundleExtraFile,
    BundleFormatUnsupported,
    BundleManifestDamaged,
    BundleSignatureInvalid,
)

_TAG_NAMES = {*fmt.TAG_FILES, fmt.TAGMANIFEST, fmt.SIGNATURE}
_MAX_NAMED = 5


@dataclass
class Screened:
    """A sealed bundle whose signature and tag files are sound."""

    info: fmt.BagInfo
    damaged: dict[str, str] = field(default_factory=dict)  # payload path -> reason


def _named(defects: list[v.Defect]) -> str:
    text = "; ".join(d.describe() for d in defects[:_MAX_NAMED])
    more = len(defects) - _MAX_NAMED
    return text + (f" and {more} more" if more > 0 else "")


def _is_payload(defect: v.Defect) -> bool:
    return defect.path.startswith(f"{fmt.DATA}/")


def screen(report: v.VerifyReport) -> Screened | None:
    """Screen *report*; None for an unsealed bundle; raise the refusal for a bundle-level defect."""
    bundle = report.bundle_id
    kinds = report.kinds()
    if v.FORMAT_UNSUPPORTED in kinds:
        detail = next(d.detail for d in report.defects if d.kind == v.FORMAT_UNSUPPORTED)
        raise BundleFormatUnsupported(f"bundle {bundle}: {detail}")
    if not report.sealed:
        return None
    tag_defects = [d for d in report.defects if not _is_payload(d) and d.kind != v.BAD_SIGNATURE]
    if report.info is None:
        raise BundleManifestDamaged(f"bundle {bundle}: {_named(tag_defects or report.defects)}")
    signature = [d for d in report.defects if d.kind == v.BAD_SIGNATURE]
    if signature:
        raise BundleSignatureInvalid(
            f"bundle {bundle} is not validly signed by the device it names: {_named(signature)}",
            hint="The bundle was altered or forged. Nothing from it was imported; keep the drive "
            "as it is and contact the security officer.",
        )
    extras = [d for d in report.defects if d.kind == v.EXTRA]
    damaged_tags = [d for d in tag_defects if d.kind != v.EXTRA]
    if damaged_tags:
        raise BundleManifestDamaged(f"bundle {bundle}: {_named(damaged_tags)}")
    if extras:
        raise BundleExtraFile(f"bundle {bundle} holds files nobody signed: {_named(extras)}")
    damaged = {d.path: payload_damage(d.kind, d.detail) for d in report.defects if _is_payload(d)}
    return Screened(report.info, damaged)


def payload_damage(kind: str, detail: str = "") -> str:
    """Why a payload object is not imported, from its keyless verification defect."""
    return {
        v.MISSING: "missing from the drive",
        v.TRUNCATED: f"truncated on the drive ({detail})",
    }.get(kind, "altered on the drive: its ciphertext differs from the signed manifest")


def check_index(index: BundleIndex, bundle_dir: Path, info: fmt.BagInfo) -> None:
    """The index must list each object of the signed manifest exactly once, under its number."""
    manifest = fmt.parse_checksums((bundle_dir / fmt.MANIFEST).read_bytes(), fmt.MANIFEST)
    seen: set[int] = set()
    for entry in index:
        if (
            entry.seq in seen
            or entry.path != fmt.object_relpath(entry.seq)
            or entry.path not in manifest
        ):
            raise BundleDamaged(
                f"bundle {info.bundle_id}: {fmt.INDEX} entry {entry.seq} does not match the "
                "manifest (duplicate, misplaced or unlisted object)"
            )
        seen.add(entry.seq)
    if len(seen) != info.object_count:
        raise BundleDamaged(
            f"bundle {info.bundle_id}: {fmt.INDEX} lists {len(seen)} objects, bag-info "
            f"{info.object_count}"
        )
