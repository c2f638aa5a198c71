"""The age v1 format in memory, over cryptography's primitives: the objects' writer and reader.

The age v1 format (https://age-encryption.org/v1, C2SP): a text header (version line, one
stanza per recipient, "--- " and an HMAC-SHA256 of the header), then a 16-byte nonce and the
STREAM payload: 64 KiB chunks sealed with ChaCha20-Poly1305 under a key derived from the file
key and that nonce, the nonce of chunk i being i (11 bytes, big endian) and a last-chunk flag.
Only X25519 recipients are written and read (ours); anything malformed is refused, as age and
rage do.

Part of the :mod:`common.crypto` package, the one place that imports ``cryptography.hazmat``
(STYLE.md point 14); callers use :func:`common.crypto.encrypt_object_bytes` and
:func:`common.crypto.decrypt_object_bytes`, which check the keys' encoding with pyrage first.
pyrage, the stock ``age`` CLI and this reader agree (tests/common/test_age_reader.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_AGE_VERSION_LINE = b"age-encryption.org/v1\n"
_AGE_X25519_INFO = b"age-encryption.org/v1/X25519"
_AGE_CHUNK = 64 << 10
_AGE_TAG = 16
_AGE_NONCE = 16
_AGE_COLUMNS = 64  # a stanza body's base64 is wrapped at 64 characters; its last line is shorter
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


class AgeRefused(Exception):
    """Why an age file does not decrypt (a malformed header, no matching recipient, damage)."""


def bech32_key(text: str) -> bytes:
    """The 32-byte key of a bech32 string already checked: the 52 data characters before the
    6 of the checksum are the key's 256 bits in groups of five."""
    data = text.lower().rpartition("1")[2][:-6]
    bits = 0
    for char in data:
        bits = (bits << 5) | _BECH32.index(char)
    return (bits >> (5 * len(data) - 256)).to_bytes(32, "big")


def _b64_strict(text: bytes, what: str) -> bytes:
    """age's base64: the standard alphabet, no padding, canonical (re-encodes to itself)."""
    try:
        raw = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except ValueError as exc:
        raise AgeRefused(f"the header is invalid ({what} is not base64)") from exc
    if base64.b64encode(raw).rstrip(b"=") != text:
        raise AgeRefused(f"the header is invalid ({what} is not canonical base64)")
    return raw


def _age_line(data: bytes, start: int) -> tuple[bytes, int]:
    end = data.find(b"\n", start)
    if end < 0:
        raise AgeRefused("the header is cut short")
    return data[start:end], end + 1


def _age_header(data: bytes) -> tuple[list[tuple[list[bytes], bytes]], int, bytes, int]:
    """The stanzas (arguments, body), the length of the header the MAC covers, the MAC, and
    where the payload starts."""
    if not data.startswith(_AGE_VERSION_LINE):
        raise AgeRefused("not an age v1 file (its first line is not age-encryption.org/v1)")
    stanzas: list[tuple[list[bytes], bytes]] = []
    line, pos = _age_line(data, len(_AGE_VERSION_LINE))
    while not line.startswith(b"--- "):
        args = line[3:].split(b" ")
        if not line.startswith(b"-> ") or not all(_age_vchars(a) for a in args):
            raise AgeRefused("the header is invalid (a malformed stanza line)")
        body = b""
        while True:
            line, pos = _age_line(data, pos)
            if len(line) > _AGE_COLUMNS:
                raise AgeRefused("the header is invalid (a stanza body line is too long)")
            body += _b64_strict(line, "a stanza body")
            if len(line) < _AGE_COLUMNS:
                break
        stanzas.append((args, body))
        line, pos = _age_line(data, pos)
    covered = pos - len(line) - 1 + 3  # up to and including "---"
    return stanzas, covered, _b64_strict(line[4:], "the header MAC"), pos


def _age_vchars(arg: bytes) -> bool:
    """A stanza argument: one or more visible ASCII characters."""
    return bool(arg) and all(0x21 <= c <= 0x7E for c in arg)


def _age_file_key(
    stanzas: list[tuple[list[bytes], bytes]], key: X25519PrivateKey, public: bytes
) -> bytes:
    """The file key wrapped to *key* in one of the X25519 stanzas."""
    for args, body in stanzas:
        if args[0] != b"X25519":
            continue
        share = _b64_strict(args[1], "an X25519 share") if len(args) == 2 else b""
        if len(share) != 32 or len(body) != 32:
            raise AgeRefused("the header is invalid (a malformed X25519 stanza)")
        try:
            shared = key.exchange(X25519PublicKey.from_public_bytes(share))
        except ValueError as exc:  # a low-order share: an all-zero shared secret
            raise AgeRefused("the header is invalid (an X25519 share of low order)") from exc
        wrap = HKDF(hashes.SHA256(), 32, salt=share + public, info=_AGE_X25519_INFO).derive(shared)
        try:
            return ChaCha20Poly1305(wrap).decrypt(bytes(12), body, None)
        except InvalidTag:
            continue  # wrapped to another recipient
    raise AgeRefused("no identity matched any of the recipients (not encrypted to this key)")


def age_encrypt(data: bytes, recipients: list[bytes]) -> bytes:
    """An age v1 file of *data* for the X25519 *recipients* (public keys), as age writes it:
    a random file key wrapped to each recipient with a fresh ephemeral key, the header MAC,
    a random payload nonce, then the STREAM chunks."""
    fresh = secrets.token_bytes(16 + _AGE_NONCE)  # one system call for both
    file_key, nonce = fresh[:16], fresh[16:]
    lines = [_AGE_VERSION_LINE]
    for public in recipients:
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
        wrap = HKDF(hashes.SHA256(), 32, salt=share + public, info=_AGE_X25519_INFO).derive(shared)
        body = ChaCha20Poly1305(wrap).encrypt(bytes(12), file_key, None)
        lines += [b"-> X25519 " + _b64_raw(share) + b"\n", _b64_raw(body) + b"\n"]
    header = b"".join(lines) + b"---"
    mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"header").derive(file_key)
    mac = hmac.new(mac_key, header, hashlib.sha256).digest()
    aead = ChaCha20Poly1305(HKDF(hashes.SHA256(), 32, salt=nonce, info=b"payload").derive(file_key))
    chunks = max(1, -(-len(data) // _AGE_CHUNK))
    view = memoryview(data)
    sealed = [
        aead.encrypt(
            i.to_bytes(11, "big") + (b"\x01" if i == chunks - 1 else b"\x00"),
            view[i * _AGE_CHUNK : (i + 1) * _AGE_CHUNK],
            None,
        )
        for i in range(chunks)
    ]
    return b"".join([header, b" ", _b64_raw(mac), b"\n", nonce, *sealed])


def _b64_raw(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def age_decrypt(data: bytes, key: X25519PrivateKey, public: bytes) -> bytearray:
    stanzas, covered, mac, start = _age_header(data)
    file_key = _age_file_key(stanzas, key, public)
    mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"header").derive(file_key)
    if not hmac.compare_digest(hmac.new(mac_key, data[:covered], hashlib.sha256).digest(), mac):
        raise AgeRefused("the header MAC does not match (the header was altered)")
    nonce = data[start : start + _AGE_NONCE]
    sealed = memoryview(data)[start + _AGE_NONCE :]
    if len(nonce) < _AGE_NONCE or not sealed:
        raise AgeRefused("the payload is cut short")
    aead = ChaCha20Poly1305(HKDF(hashes.SHA256(), 32, salt=nonce, info=b"payload").derive(file_key))
    step = _AGE_CHUNK + _AGE_TAG
    chunks = -(-len(sealed) // step)
    last = len(sealed) - (chunks - 1) * step
    if last < _AGE_TAG or (last == _AGE_TAG and chunks > 1):
        raise AgeRefused("the payload is cut short (its last chunk is truncated or empty)")
    plain = bytearray(len(sealed) - chunks * _AGE_TAG)
    out = memoryview(plain)
    for i in range(chunks):
        piece = sealed[i * step : (i + 1) * step]
        flag = b"\x01" if i == chunks - 1 else b"\x00"
        try:
            aead.decrypt_into(
                i.to_bytes(11, "big") + flag,
                piece,
                None,
                out[i * _AGE_CHUNK :][: len(piece) - _AGE_TAG],
            )
        except InvalidTag as exc:
            raise AgeRefused(
                f"payload chunk {i} does not authenticate (the file is damaged or cut short)"
            ) from exc
    return plain
