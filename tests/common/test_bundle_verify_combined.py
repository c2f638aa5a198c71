"""Combined damage the reliability suite (reliability/damaged.py) found the verifier misnaming."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.bundle import format as fmt
from common.bundle import verify as v
from common.bundle.verify import verify_bundle
from tests.helpers import bundle_dir, do_pull


@pytest.fixture
def bundle(device, drive, terminal) -> Path:  # type: ignore[no-untyped-def]
    return bundle_dir(drive, do_pull(device, drive, terminal.root))


def test_altered_tag_manifest_is_named_when_the_fingerprint_is_edited_too(bundle: Path) -> None:
    """With bag-info's fingerprint edited AND the tag manifest altered, the signature defect
    is still reported, so the altered tag manifest is named rather than only the tag files it
    now mislists."""
    info = bundle / fmt.BAG_INFO
    info.write_text(
        "".join(
            "Courier-Device-Fingerprint: forged\n"
            if line.startswith("Courier-Device-Fingerprint:")
            else f"{line}\n"
            for line in info.read_text().splitlines()
        )
    )
    tagmanifest = bundle / fmt.TAGMANIFEST
    data = bytearray(tagmanifest.read_bytes())
    data[0] ^= 1
    tagmanifest.write_bytes(bytes(data))
    kinds = {(d.kind, d.path) for d in verify_bundle(bundle).defects}
    assert (v.BAD_SIGNATURE, fmt.BAG_INFO) in kinds
    assert (v.BAD_SIGNATURE, fmt.SIGNATURE) in kinds
