"""The in-memory age v1 reader and writer (``crypto.decrypt_object_bytes``,
``crypto.encrypt_object_bytes``) against pyrage and the stock ``age`` CLI: the same plaintext
for every valid file, a refusal for every damaged one, and files both of them read.

The import decrypts every object with the reader and the pull encrypts every object with the
writer (both several times faster than pyrage, and they let other threads run), so the reader
must never accept what age refuses, nor refuse what age writes, and age must read the writer's.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pyrage
import pytest

from common import crypto
from common.errors import DecryptError
from tests.conftest import require_tool

CHUNK = 64 << 10
SEALED_CHUNK = CHUNK + 16
SIZES = [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 7, 512 * 1024 + 7]


@pytest.fixture(scope="module")
def keys() -> list[crypto.AgeKeyPair]:
    return [crypto.generate_age_keypair() for _ in range(3)]


def _pyrage_decrypt(blob: bytes, identity: str) -> bytes | None:
    try:
        return bytes(pyrage.decrypt(blob, [pyrage.x25519.Identity.from_str(identity)]))
    except pyrage.DecryptError:
        return None


def _ours(blob: bytes, identity: str) -> bytes | None:
    try:
        return bytes(crypto.decrypt_object_bytes(blob, identity, "o.age"))
    except DecryptError:
        return None


@pytest.mark.parametrize("size", SIZES)
def test_reads_what_pyrage_writes(keys: list[crypto.AgeKeyPair], size: int) -> None:
    """Every recipient of a file reads its plaintext, whatever its place among the stanzas
    (pyrage also adds random "grease" stanzas, which are skipped), across chunk boundaries."""
    data = os.urandom(size)
    blob = crypto.encrypt_bytes(data, [keys[0].recipient, keys[1].recipient])
    assert crypto.decrypt_object_bytes(blob, keys[0].identity, "o.age") == data
    assert crypto.decrypt_object_bytes(blob, keys[1].identity, "o.age") == data


def test_reads_what_the_stock_age_cli_writes(keys: list[crypto.AgeKeyPair], tmp_path: Path) -> None:
    """Files written by Debian's `age` (another implementation: Go) read back the same."""
    age = require_tool("age")
    for size in (0, CHUNK, 3 * CHUNK + 5):
        plain = tmp_path / f"p{size}"
        plain.write_bytes(os.urandom(size))
        out = tmp_path / f"p{size}.age"
        argv = [age, "-r", keys[2].recipient, "-r", keys[0].recipient, "-o", str(out), str(plain)]
        subprocess.run(argv, check=True, capture_output=True)
        assert (
            crypto.decrypt_object_bytes(out.read_bytes(), keys[0].identity, "o")
            == plain.read_bytes()
        )


def test_a_file_for_another_key_is_refused_with_the_object_named(
    keys: list[crypto.AgeKeyPair],
) -> None:
    blob = crypto.encrypt_bytes(b"x" * 100, [keys[1].recipient])
    with pytest.raises(DecryptError, match=r"object o\.age failed to decrypt: no identity matched"):
        crypto.decrypt_object_bytes(blob, keys[0].identity, "o.age")


def _mutations(blob: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    header_end = blob.index(b"\n---") + 1
    header_end = blob.index(b"\n", header_end) + 1
    cuts = {0, 1, header_end - 1, header_end, header_end + 15, header_end + 16, header_end + 17}
    for boundary in range(header_end + 16, len(blob) + SEALED_CHUNK, SEALED_CHUNK):
        cuts |= {boundary + d for d in (-17, -16, -15, -1, 1, 15, 16, 17)}
    cuts |= set(rng.sample(range(len(blob)), 40))
    found = [(f"cut at {n}", blob[:n]) for n in sorted(cuts) if 0 <= n < len(blob)]
    flips = set(range(header_end + 16)) | set(rng.sample(range(len(blob)), 60))
    for n in sorted(flips):
        for bit in (0, 7) if n < header_end else (rng.randrange(8),):
            changed = bytearray(blob)
            changed[n] ^= 1 << bit
            found.append((f"bit {bit} of byte {n} flipped", bytes(changed)))
    found += [
        ("one byte appended", blob + b"\0"),
        ("an empty chunk appended", blob + bytes(16)),
        ("a chunk repeated", blob + blob[-SEALED_CHUNK:]),
        ("a chunk dropped", blob[: header_end + 16] + blob[header_end + 16 + SEALED_CHUNK :]),
        ("the first two chunks swapped", _swapped(blob, header_end + 16)),
        ("the header line doubled", blob.replace(b"\n-> ", b"\n\n-> ", 1)),
        ("CRLF line ends", blob[:header_end].replace(b"\n", b"\r\n") + blob[header_end:]),
        ("the version changed", blob.replace(b"/v1\n", b"/v2\n", 1)),
        ("padded base64", blob.replace(b"\n---", b"==\n---", 1)),
    ]
    return found


def _swapped(blob: bytes, start: int) -> bytes:
    one, two = (
        blob[start : start + SEALED_CHUNK],
        blob[start + SEALED_CHUNK : start + 2 * SEALED_CHUNK],
    )
    return blob[:start] + two + one + blob[start + 2 * SEALED_CHUNK :]


@pytest.mark.parametrize("size", [100, 2 * CHUNK + 7, 3 * CHUNK])
def test_damage_is_refused_as_pyrage_refuses_it(keys: list[crypto.AgeKeyPair], size: int) -> None:
    """Cuts at every boundary of the format, bit flips in every header byte and the payload's
    nonce and in random payload bytes, chunks appended, dropped, repeated or swapped, header
    lines altered: the reader refuses exactly what pyrage refuses, and where both accept (a
    flip pyrage also ignores) they give the same plaintext."""
    rng = random.Random(size)
    data = rng.randbytes(size)
    blob = crypto.encrypt_bytes(data, [keys[0].recipient])
    differences = []
    cases = _mutations(blob, rng)
    for what, changed in cases:
        ours, theirs = _ours(changed, keys[0].identity), _pyrage_decrypt(changed, keys[0].identity)
        if ours != theirs:
            differences.append(f"{what}: ours {_said(ours)}, pyrage {_said(theirs)}")
    assert differences == []
    assert sum(_ours(changed, keys[0].identity) is None for _w, changed in cases) > len(cases) * 0.9


def _said(plain: bytes | None) -> str:
    return "refused" if plain is None else f"{len(plain)} bytes"


def test_a_low_order_share_is_refused(keys: list[crypto.AgeKeyPair]) -> None:
    """An X25519 stanza whose share gives an all-zero secret is refused, not decrypted."""
    blob = crypto.encrypt_bytes(b"x", [keys[0].recipient])
    line = next(x for x in blob.split(b"\n") if x.startswith(b"-> X25519 "))
    forged = blob.replace(line, b"-> X25519 " + b"A" * 43, 1)
    with pytest.raises(DecryptError, match="low order"):
        crypto.decrypt_object_bytes(forged, keys[0].identity, "o")
    assert _pyrage_decrypt(forged, keys[0].identity) is None


@pytest.mark.parametrize("size", SIZES)
def test_what_it_writes_pyrage_and_the_stock_age_cli_read(
    keys: list[crypto.AgeKeyPair], size: int, tmp_path: Path
) -> None:
    """Every recipient reads the plaintext back with pyrage, with Debian's `age` (Go) and with
    the reader above, across chunk boundaries (an empty file is one empty last chunk)."""
    age = require_tool("age")
    data = os.urandom(size)
    blob = crypto.encrypt_object_bytes(data, [keys[0].recipient, keys[1].recipient])
    for pair in keys[:2]:
        assert _pyrage_decrypt(blob, pair.identity) == data
        assert crypto.decrypt_object_bytes(blob, pair.identity, "o") == data
    (tmp_path / "identity").write_text(keys[1].identity + "\n")
    (tmp_path / "o.age").write_bytes(blob)
    argv = [age, "-d", "-i", str(tmp_path / "identity"), str(tmp_path / "o.age")]
    assert subprocess.run(argv, check=True, capture_output=True).stdout == data
    assert _pyrage_decrypt(blob, keys[2].identity) is None


def test_every_file_gets_its_own_keys_and_nonce(keys: list[crypto.AgeKeyPair]) -> None:
    """The same plaintext twice: other ephemeral shares, wrapped keys, MAC, nonce and chunks
    (a fresh file key and ephemeral key per file, as age requires), each line as age writes it."""
    one, two = (crypto.encrypt_object_bytes(b"x" * 100, [keys[0].recipient]) for _ in range(2))
    lines_one, lines_two = one.split(b"\n", 4), two.split(b"\n", 4)
    assert lines_one[0] == lines_two[0] == b"age-encryption.org/v1"
    assert lines_one[1].startswith(b"-> X25519 ") and len(lines_one[1]) == len(b"-> X25519 ") + 43
    assert len(lines_one[2]) == 43 and lines_one[3].startswith(b"--- ")
    for a, b in zip(lines_one[1:], lines_two[1:], strict=True):
        assert a != b
