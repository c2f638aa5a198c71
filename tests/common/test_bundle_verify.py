"""The keyless verifier names each defect of a bundle."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from common.bundle import format as fmt
from common.bundle import verify as v
from common.bundle.verify import verify_bundle
from common.bundle.writer import hash_file
from common.crypto import fingerprint, generate_signing_seed, public_key, sign
from common.fsio import atomic_write
from tests.helpers import bundle_dir, do_pull, first_object


@pytest.fixture
def bundle(device, drive, terminal) -> Path:  # type: ignore[no-untyped-def]
    return bundle_dir(drive, do_pull(device, drive, terminal.root))


def _resign(bundle: Path, seed: bytes, *, info_edit: dict[str, str] | None = None) -> None:
    """Rewrite bag-info (optionally edited), the tag manifest and the signature with *seed*."""
    if info_edit:
        text = (bundle / fmt.BAG_INFO).read_text()
        for key, value in info_edit.items():
            text = "".join(
                f"{key}: {value}\n" if line.startswith(f"{key}:") else line + "\n"
                for line in text.splitlines()
            )
        atomic_write(bundle / fmt.BAG_INFO, text.encode())
    rows = [(name, hash_file(bundle / name)[0]) for name in fmt.TAG_FILES]
    tagmanifest = fmt.render_checksums(rows)
    atomic_write(bundle / fmt.TAGMANIFEST, tagmanifest)
    sig = sign(seed, fmt.SIGNATURE_CONTEXT + tagmanifest)
    atomic_write(bundle / fmt.SIGNATURE, base64.b64encode(sig) + b"\n")


def test_sealed_bundle_is_valid(bundle: Path) -> None:
    """A freshly sealed bundle verifies with no defect."""
    report = verify_bundle(bundle)
    assert report.valid, [d.describe() for d in report.defects]
    assert report.info is not None and report.info.object_count > 0


def test_missing_object_is_named(bundle: Path) -> None:
    """Deleting an object is reported as missing, naming the file."""
    first_object(bundle).unlink()
    report = verify_bundle(bundle)
    assert v.Defect(v.MISSING, fmt.object_relpath(1)) in report.defects


def test_extra_payload_file_is_named(bundle: Path) -> None:
    """A file added under data/ is reported as extra."""
    (bundle / "data" / "s0000" / "999999.age").write_bytes(b"x")
    assert {(d.kind, d.path) for d in verify_bundle(bundle).defects} == {
        (v.EXTRA, "data/s0000/999999.age")
    }


def test_extra_top_level_file_is_named(bundle: Path) -> None:
    """A stray file beside the tag files is reported as extra."""
    (bundle / "notes.txt").write_text("hello")
    assert (v.EXTRA, "notes.txt") in {(d.kind, d.path) for d in verify_bundle(bundle).defects}


def test_truncated_object_is_named(bundle: Path) -> None:
    """Cutting an object short is reported as truncated, with both sizes."""
    path = first_object(bundle)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    defects = verify_bundle(bundle).defects
    assert [(d.kind, d.path) for d in defects] == [(v.TRUNCATED, fmt.object_relpath(1))]
    assert f"of {len(data)} bytes" in defects[0].detail


def test_bit_flipped_object_is_altered(bundle: Path) -> None:
    """Flipping one bit of an object is reported as altered."""
    path = first_object(bundle)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert [(d.kind, d.path) for d in verify_bundle(bundle).defects] == [
        (v.ALTERED, fmt.object_relpath(1))
    ]


def test_missing_signature_is_unsealed_not_valid(bundle: Path) -> None:
    """Without its signature a bundle is reported unsealed, never valid."""
    (bundle / fmt.SIGNATURE).unlink()
    report = verify_bundle(bundle)
    assert not report.sealed and not report.valid
    assert v.UNSIGNED in report.kinds()


def test_corrupt_signature_is_bad_signature(bundle: Path) -> None:
    """A signature that does not match the tag manifest is reported as a bad signature."""
    sig = bytearray(base64.b64decode((bundle / fmt.SIGNATURE).read_bytes()))
    sig[0] ^= 0xFF
    (bundle / fmt.SIGNATURE).write_bytes(base64.b64encode(bytes(sig)))
    assert v.BAD_SIGNATURE in verify_bundle(bundle).kinds()


def test_edited_bag_info_is_altered(bundle: Path) -> None:
    """Editing clear metadata breaks the tag manifest and is named."""
    text = (bundle / fmt.BAG_INFO).read_text().replace("Facility-Id: clinic-1", "Facility-Id: x")
    (bundle / fmt.BAG_INFO).write_text(text)
    assert (v.ALTERED, fmt.BAG_INFO) in {(d.kind, d.path) for d in verify_bundle(bundle).defects}


def test_resigned_by_other_device_is_wrong_signer(bundle: Path) -> None:
    """A bundle re-signed by another key is refused when that key is not trusted."""
    original = verify_bundle(bundle).info
    assert original is not None
    other = generate_signing_seed()
    _resign(
        bundle,
        other,
        info_edit={
            "Courier-Device-Public-Key": base64.b64encode(public_key(other)).decode(),
            "Courier-Device-Fingerprint": fingerprint(public_key(other)),
        },
    )
    assert verify_bundle(bundle).valid  # integrity alone holds ...
    report = verify_bundle(bundle, trusted=lambda fp: fp == original.device_fingerprint)
    assert report.kinds() == {v.WRONG_SIGNER}  # ... but the signer is not the trusted one


def test_key_and_fingerprint_mismatch_is_bad_signature(bundle: Path) -> None:
    """A bag-info whose key does not match its stated fingerprint cannot pass."""
    other = generate_signing_seed()
    _resign(
        bundle,
        other,
        info_edit={"Courier-Device-Public-Key": base64.b64encode(public_key(other)).decode()},
    )
    assert v.BAD_SIGNATURE in verify_bundle(bundle).kinds()


def test_newer_format_version_is_unsupported(bundle: Path) -> None:
    """A bundle of a newer format version is refused as unsupported, not as damaged."""
    text = (
        (bundle / fmt.BAG_INFO)
        .read_text()
        .replace("Bundle-Format-Version: 1", "Bundle-Format-Version: 2")
    )
    (bundle / fmt.BAG_INFO).write_text(text)
    assert verify_bundle(bundle).kinds() == {v.FORMAT_UNSUPPORTED}


def test_deleted_tag_file_is_missing(bundle: Path) -> None:
    """Deleting the encrypted index is reported as a missing tag file."""
    (bundle / fmt.INDEX).unlink()
    assert (v.MISSING, fmt.INDEX) in {(d.kind, d.path) for d in verify_bundle(bundle).defects}


def test_manifest_is_sha256sum_compatible(bundle: Path) -> None:
    """`sha256sum -c` accepts the payload manifest, so anyone can check a bundle."""
    import subprocess

    tool = shutil.which("sha256sum")
    if tool is None:
        pytest.skip("sha256sum missing")
    done = subprocess.run(
        [tool, "--quiet", "-c", fmt.MANIFEST], cwd=bundle, check=False, capture_output=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_renamed_bundle_folder_is_named(bundle: Path) -> None:
    """A bundle copied under another folder name is reported: ids must match their folder."""
    renamed = bundle.with_name("20200101T000000Z-00000000")
    bundle.rename(renamed)
    defects = verify_bundle(renamed).defects
    assert [(d.kind, d.path) for d in defects] == [(v.MALFORMED, fmt.BAG_INFO)]
    assert "renamed" in defects[0].detail


def test_payload_oxum_must_match_the_manifests(bundle: Path) -> None:
    """A re-signed bag-info whose Payload-Oxum disagrees with the manifests is reported."""
    info = verify_bundle(bundle).info
    assert info is not None
    seed_holder = generate_signing_seed()
    _resign(
        bundle,
        seed_holder,
        info_edit={
            "Payload-Oxum": f"{info.payload_bytes + 1}.{info.object_count}",
            "Courier-Device-Public-Key": base64.b64encode(public_key(seed_holder)).decode(),
            "Courier-Device-Fingerprint": fingerprint(public_key(seed_holder)),
        },
    )
    assert [(d.kind, d.path) for d in verify_bundle(bundle).defects] == [
        (v.MALFORMED, fmt.BAG_INFO)
    ]


def test_facility_id_with_path_characters_is_refused() -> None:
    """Facility ids that could escape a folder or break bag-info are not valid."""
    for bad in ("../x", "/abs", "a/b", "x\ny", "", ".hidden", "a..b"):
        assert not fmt.valid_facility_id(bad)
    for good in ("clinic-1", "Dr.Tanaka_Clinic", "c9"):
        assert fmt.valid_facility_id(good)
