"""Verifying a bundle without any secret key (courier, clinic, intake desk, center).

Order: format version, signature of the tag manifest against the device key named in bag-info
(and, when the caller says which keys it trusts, that the signer is one of them), every tag file
against the tag manifest, then the payload against the manifest: each missing, extra, truncated
or altered file is named. A bundle without its signature is *unsealed*, never valid.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from common.bundle import format as fmt
from common.bundle.writer import hash_file
from common.crypto import fingerprint, verify_signature
from common.errors import BundleDamaged, BundleFormatUnsupported

_T = TypeVar("_T")
_HASHERS = 3  # payload files read and hashed at once
_AHEAD = 16  # files hashed ahead of the one being checked

# Defect kinds, stable strings used in reports, JSON output and tests.
UNSIGNED = "unsigned"
BAD_SIGNATURE = "bad-signature"
WRONG_SIGNER = "wrong-signer"
FORMAT_UNSUPPORTED = "format-unsupported"
MALFORMED = "malformed"
MISSING = "missing"
EXTRA = "extra"
TRUNCATED = "truncated"
ALTERED = "altered"


@dataclass(frozen=True)
class Defect:
    kind: str
    path: str
    detail: str = ""

    def describe(self) -> str:
        return f"{self.path}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_bundle`; ``valid`` only when sealed with no defect."""

    bundle_dir: Path
    info: fmt.BagInfo | None = None
    defects: list[Defect] = field(default_factory=list)

    @property
    def bundle_id(self) -> str:
        return self.info.bundle_id if self.info else self.bundle_dir.name

    @property
    def sealed(self) -> bool:
        return not any(d.kind == UNSIGNED for d in self.defects)

    @property
    def valid(self) -> bool:
        return not self.defects

    def kinds(self) -> set[str]:
        return {d.kind for d in self.defects}


def verify_bundle(
    bundle_dir: Path,
    *,
    trusted: Callable[[str], bool] | None = None,
    check_payload: bool = True,
    hash_payload: bool = True,
    on_object: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check *bundle_dir* and list every defect found.

    *trusted* receives the signer's fingerprint and says whether that device may sign bundles;
    without it, any correctly signed bundle passes the signature step (integrity only).
    *on_object* is called with each payload file's size, for progress display. Without
    *hash_payload*, payload files are checked for presence and size only: a caller reading
    every object anyway (the center's import) compares each one's sha256 with the manifest
    itself, and the disk is read once instead of twice.
    """
    report = VerifyReport(bundle_dir)
    sig_path = bundle_dir / fmt.SIGNATURE
    if not sig_path.exists():
        report.defects.append(Defect(UNSIGNED, fmt.SIGNATURE, "no signature: bundle not sealed"))
    try:
        report.info = fmt.BagInfo.parse((bundle_dir / fmt.BAG_INFO).read_bytes())
    except FileNotFoundError:
        report.defects.append(Defect(MISSING, fmt.BAG_INFO))
    except BundleFormatUnsupported as exc:
        report.defects.append(Defect(FORMAT_UNSUPPORTED, fmt.BAG_INFO, exc.message))
        return report
    except BundleDamaged as exc:
        report.defects.append(Defect(MALFORMED, fmt.BAG_INFO, exc.message))
    if report.info is not None and report.info.bundle_id != bundle_dir.name:
        report.defects.append(
            Defect(
                MALFORMED,
                fmt.BAG_INFO,
                f"folder {bundle_dir.name} holds bundle {report.info.bundle_id}: renamed or copied",
            )
        )
    try:
        tagmanifest = (bundle_dir / fmt.TAGMANIFEST).read_bytes()
    except FileNotFoundError:
        report.defects.append(Defect(MISSING, fmt.TAGMANIFEST))
        tagmanifest = None
    if tagmanifest is not None and report.sealed:
        _check_signature(report, sig_path, tagmanifest, trusted)
    if tagmanifest is not None:
        _check_tags(report, bundle_dir, tagmanifest)
    if check_payload:
        _check_payload(report, bundle_dir, on_object, hash_payload=hash_payload)
    return report


def _check_signature(
    report: VerifyReport, sig_path: Path, tagmanifest: bytes, trusted: Callable[[str], bool] | None
) -> None:
    if report.info is None:
        report.defects.append(Defect(BAD_SIGNATURE, fmt.SIGNATURE, "signer unknown: no bag-info"))
        return
    try:
        signature = base64.b64decode(sig_path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError):
        report.defects.append(Defect(BAD_SIGNATURE, fmt.SIGNATURE, "not a base64 signature"))
        return
    public = report.info.device_public_key
    key_matches = fingerprint(public) == report.info.device_fingerprint
    if not key_matches:
        report.defects.append(
            Defect(BAD_SIGNATURE, fmt.BAG_INFO, "device key and fingerprint disagree")
        )
    # Checked even when the fingerprint disagrees: an altered tag manifest is then named too.
    if not verify_signature(public, fmt.SIGNATURE_CONTEXT + tagmanifest, signature):
        report.defects.append(
            Defect(BAD_SIGNATURE, fmt.SIGNATURE, "signature does not match the tag manifest")
        )
        return
    if not key_matches:
        return
    if trusted is not None and not trusted(report.info.device_fingerprint):
        report.defects.append(
            Defect(WRONG_SIGNER, fmt.SIGNATURE, f"signed by {report.info.device_fingerprint}")
        )


def _check_tags(report: VerifyReport, bundle_dir: Path, tagmanifest: bytes) -> None:
    try:
        expected = fmt.parse_checksums(tagmanifest, fmt.TAGMANIFEST)
    except BundleDamaged as exc:
        report.defects.append(Defect(MALFORMED, fmt.TAGMANIFEST, exc.message))
        return
    for name in fmt.TAG_FILES:
        if name not in expected:
            report.defects.append(Defect(MALFORMED, fmt.TAGMANIFEST, f"does not list {name}"))
    known = {*fmt.TAG_FILES, fmt.TAGMANIFEST, fmt.SIGNATURE, fmt.DATA}
    for path in sorted(bundle_dir.iterdir()):
        if path.name not in known:
            report.defects.append(Defect(EXTRA, path.name, "not part of a bundle"))
    for name, digest in sorted(expected.items()):
        path = bundle_dir / name
        if not path.is_file():
            report.defects.append(Defect(MISSING, name))
        elif hash_file(path)[0] != digest:
            report.defects.append(Defect(ALTERED, name, "differs from the tag manifest"))


def _check_payload(
    report: VerifyReport,
    bundle_dir: Path,
    on_object: Callable[[int], None] | None,
    *,
    hash_payload: bool,
) -> None:
    manifest = _read_listing(report, bundle_dir, fmt.MANIFEST, fmt.parse_checksums)
    sizes = _read_listing(report, bundle_dir, fmt.PAYLOAD_SIZES, fmt.parse_sizes) or {}
    present = (
        {
            p.relative_to(bundle_dir).as_posix()
            for p in (bundle_dir / fmt.DATA).rglob("*")
            if p.is_file() or p.is_symlink()
        }
        if (bundle_dir / fmt.DATA).is_dir()
        else set()
    )
    if manifest is None:
        return
    info = report.info
    if info is not None and (
        len(manifest) != info.object_count or sum(sizes.values()) != info.payload_bytes
    ):
        report.defects.append(
            Defect(
                MALFORMED,
                fmt.BAG_INFO,
                f"Payload-Oxum says {info.payload_bytes}.{info.object_count}, the manifests list "
                f"{sum(sizes.values())}.{len(manifest)}",
            )
        )
    for relpath in sorted(present - manifest.keys()):
        report.defects.append(Defect(EXTRA, relpath, "not in the manifest"))
    if not hash_payload:
        for relpath in sorted(manifest):
            _check_size(report, relpath, present, sizes, on_object)
        return
    with ThreadPoolExecutor(_HASHERS, "verify-hash") as pool:
        for relpath, digest, hashed in _hashed(pool, bundle_dir, sorted(manifest.items())):
            _check_object(report, relpath, digest, hashed, present, sizes, on_object)


def _hashed(
    pool: ThreadPoolExecutor, bundle_dir: Path, listed: list[tuple[str, str]]
) -> Iterator[tuple[str, str, Future[tuple[str, int]] | None]]:
    """Each listed object with its hash being computed (a few ahead, in listing order; None
    for one that is missing or a link): reading and hashing release the GIL, so the threads
    overlap the disk and both cores."""
    window: deque[tuple[str, str, Future[tuple[str, int]] | None]] = deque()
    for relpath, digest in listed:
        path = bundle_dir / relpath
        job = None if not path.is_file() or path.is_symlink() else pool.submit(hash_file, path)
        window.append((relpath, digest, job))
        if len(window) > _AHEAD:
            yield window.popleft()
    yield from window


def _check_size(
    report: VerifyReport,
    relpath: str,
    present: set[str],
    sizes: dict[str, int],
    on_object: Callable[[int], None] | None,
) -> None:
    """Presence and size only (the caller hashes): a shorter file is truncated, a longer one
    altered."""
    path = report.bundle_dir / relpath
    if relpath not in present:
        report.defects.append(Defect(MISSING, relpath))
        return
    if path.is_symlink():
        report.defects.append(Defect(ALTERED, relpath, "a symbolic link, not a file"))
        return
    size = path.stat().st_size
    if on_object is not None:
        on_object(size)
    expected = sizes.get(relpath)
    if expected is not None and size < expected:
        report.defects.append(Defect(TRUNCATED, relpath, f"{size} of {expected} bytes"))
    elif expected is not None and size > expected:
        report.defects.append(Defect(ALTERED, relpath, "content differs from the manifest"))


def _check_object(
    report: VerifyReport,
    relpath: str,
    digest: str,
    hashed: Future[tuple[str, int]] | None,
    present: set[str],
    sizes: dict[str, int],
    on_object: Callable[[int], None] | None,
) -> None:
    path = report.bundle_dir / relpath
    if relpath not in present:
        report.defects.append(Defect(MISSING, relpath))
        return
    if path.is_symlink() or hashed is None:
        report.defects.append(Defect(ALTERED, relpath, "a symbolic link, not a file"))
        return
    actual, size = hashed.result()
    if on_object is not None:
        on_object(size)
    if actual == digest:
        return
    expected_size = sizes.get(relpath)
    if expected_size is not None and size < expected_size:
        report.defects.append(Defect(TRUNCATED, relpath, f"{size} of {expected_size} bytes"))
    else:
        report.defects.append(Defect(ALTERED, relpath, "content differs from the manifest"))


def _read_listing(
    report: VerifyReport, bundle_dir: Path, name: str, parse: Callable[[bytes, str], _T]
) -> _T | None:
    """Parse one of the payload listings, recording a missing or malformed file under its name."""
    try:
        return parse((bundle_dir / name).read_bytes(), name)
    except FileNotFoundError:
        if not any(d.path == name and d.kind == MISSING for d in report.defects):
            report.defects.append(Defect(MISSING, name))
    except BundleDamaged as exc:
        report.defects.append(Defect(MALFORMED, name, exc.message))
    return None
