"""All cryptography of the project, in one module (STYLE.md point 14).

Only this module imports ``pyrage`` or ``cryptography.hazmat``. Functions take bytes, paths and
key strings; they never see CLI objects.

* Objects are age v1 files (X25519 recipients, STREAM payload), which the stock ``age`` CLI
  decrypts. Objects up to 32 MiB are encrypted and decrypted whole in memory by this module's
  own writer and reader of the format (:func:`encrypt_object_bytes`,
  :func:`decrypt_object_bytes`: faster than pyrage, and they let other threads run); the rest
  goes through pyrage. pyrage swallows a write error raised at its final flush (a full disk can
  leave a truncated file while the call returns), so every streamed encryption goes through
  :class:`GuardedWriter`, which records errors and short writes and hashes what really reached
  the file; the caller's result is checked after the call, then fsynced.
* ``pyrage.decrypt_io`` on damaged input raises after writing most of the plaintext: callers
  decrypt into a temporary file and delete it on any error (:func:`decrypt_file_to` raises
  :class:`DecryptError` and leaves the clean-up to the caller, who owns the temp file).
* Secret keys at rest are sealed with a passphrase: scrypt (cost stored in the file) and
  ChaCha20-Poly1305, bound to the key's purpose and public half (:func:`seal_secret`). The escrow
  identity instead uses age's own passphrase format so that recovery needs only the stock CLI.
* Signatures are Ed25519 over canonical bytes; fingerprints are the first 16 bytes of
  sha256("ed25519:" || public key), in hex groups of four, short enough to read over a phone.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

import pyrage
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from common.crypto import agev1
from common.errors import DecryptError, KeyFileError, PassphraseError
from common.fsio import RecordingReader

SECRET_FORMAT = "clinic-archive-secret-v1"  # noqa: S105 - a format name
DEFAULT_KDF_LOG_N = 17
MIN_KDF_LOG_N = 10
MAX_KDF_LOG_N = 22
_CHUNK = 1 << 20


# -- age identities and recipients ------------------------------------------------------------


@dataclass(frozen=True)
class AgeKeyPair:
    """An age X25519 identity (secret, ``AGE-SECRET-KEY-1...``) and its recipient (``age1...``)."""

    identity: str
    recipient: str


def generate_age_keypair() -> AgeKeyPair:
    ident = pyrage.x25519.Identity.generate()
    return AgeKeyPair(identity=str(ident), recipient=str(ident.to_public()))


def check_recipient(recipient: str) -> str:
    """Return *recipient* if it parses as an age X25519 recipient, else raise ValueError."""
    try:
        pyrage.x25519.Recipient.from_str(recipient)
    except pyrage.RecipientError as exc:
        raise ValueError("not an age X25519 recipient") from exc
    return recipient


def recipient_of(identity: str) -> str:
    return str(_identity(identity).to_public())


def _identity(identity: str) -> pyrage.x25519.Identity:
    try:
        return pyrage.x25519.Identity.from_str(identity)
    except pyrage.IdentityError as exc:
        raise KeyFileError("the age identity in the key file is malformed") from exc


def _recipients(recipients: list[str]) -> list[pyrage.x25519.Recipient]:
    return list(_parsed(tuple(recipients)))


@functools.lru_cache(maxsize=16)
def _parsed(recipients: tuple[str, ...]) -> tuple[pyrage.x25519.Recipient, ...]:
    """Parsed once per set of recipients (a pull encrypts thousands of objects to the same)."""
    return tuple(pyrage.x25519.Recipient.from_str(r) for r in recipients)


# -- streaming encryption with a guarded writer ------------------------------------------------


class GuardedWriter:
    """A file-like sink for pyrage that never loses a write error.

    Writes go straight to a file descriptor, looping over short writes. Any OSError is recorded
    in :attr:`error` before it propagates, so it is seen even when pyrage swallows it. The
    sha256 and count of bytes written let the caller check what really reached the file.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._hash = hashlib.sha256()
        self.written = 0
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                if n <= 0:
                    raise OSError(28, "short write")
                self._hash.update(view[:n])
                self.written += n
                view = view[n:]
        except OSError as exc:
            self.error = exc
            raise
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here; durability is the caller's fsync."""

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class Readable(Protocol):
    """Anything with ``read(n)``: a file, a socket stream, a generator adapter."""

    def read(self, n: int = -1, /) -> bytes: ...


class HashingReader:
    """Wraps a binary stream and hashes every byte read from it."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(_CHUNK if n is None or n < 0 else n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


@dataclass(frozen=True)
class ObjectDigest:
    """What an encryption or decryption measured: plaintext and ciphertext sha256 and sizes."""

    plain_sha256: str
    plain_size: int
    cipher_sha256: str
    cipher_size: int


def encrypt_to_file(src: Readable, dst: Path, recipients: list[str]) -> ObjectDigest:
    """Encrypt *src* into a new file *dst* (which must not exist), fsync it, return its digests.

    Raises OSError (ENOSPC, EIO ...) if anything failed to reach the file, including the errors
    pyrage swallows at its final flush; *dst* is then removed.
    """
    reader = HashingReader(src)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    writer = GuardedWriter(fd)
    try:
        try:
            pyrage.encrypt_io(reader, writer, _recipients(recipients))
        except pyrage.EncryptError as exc:
            raise writer.error or OSError(5, f"encryption failed: {exc}") from exc
        if writer.error is not None:
            raise writer.error
        size = os.fstat(fd).st_size
        if size != writer.written:
            raise OSError(5, f"short write: {writer.written} bytes sent, {size} on disk")
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        dst.unlink(missing_ok=True)
        raise
    os.close(fd)
    return ObjectDigest(reader.hexdigest(), reader.size, writer.hexdigest(), writer.written)


def encrypt_bytes(data: bytes, recipients: list[str]) -> bytes:
    """Encrypt *data* whole in memory (an age v1 file's bytes).

    For a small file this is the fast way: pyrage's streaming API calls back into Python for
    every 8 KiB read and 64 KiB write. The caller writing the result to disk must check what
    was written and fsync it (:func:`common.fsio.write_new_file`), then verify it.
    """
    return bytes(pyrage.encrypt(data, _recipients(recipients)))


def encrypt_object_bytes(data: bytes, recipients: list[str]) -> bytes:
    """Encrypt an object whole in memory (an age v1 file's bytes), without pyrage.

    The courier's hot path (every object of a pull): :func:`agev1.age_encrypt` writes the age
    format with cryptography's primitives, several times faster than pyrage and letting other
    threads run meanwhile (docs/performance.md); pyrage, the stock ``age`` CLI and
    :func:`decrypt_object_bytes` read what it writes (tests/common/test_age_reader.py). The
    caller writing the result to disk checks what was written and fsyncs it, as for
    :func:`encrypt_bytes`.
    """
    return agev1.age_encrypt(data, [_x25519_recipient(r) for r in recipients])


def decrypt_bytes(data: bytes, identity: str) -> bytes:
    try:
        return bytes(pyrage.decrypt(data, [_identity(identity)]))
    except pyrage.DecryptError as exc:
        raise DecryptError("an encrypted file could not be decrypted with the archive key") from exc


def decrypt_object_bytes(data: bytes, identity: str, name: str) -> bytes:
    """Decrypt a whole age v1 object read into memory (nothing of a damaged one is kept: no
    partial plaintext on disk); DecryptError says why, as :func:`decrypt_file_to` does.

    This is the center's hot path (every object of an import) and it does not go through
    pyrage, which decrypts at about 730 MB/s holding the GIL: :func:`agev1.age_decrypt` reads the
    same format with cryptography's primitives, about six times faster, and lets other threads
    run meanwhile (docs/performance.md). It accepts exactly the files pyrage accepts, with the
    same plaintext (tests/common/test_age_reader.py checks it against pyrage and the age CLI).
    """
    try:
        return bytes(agev1.age_decrypt(data, *_x25519_identity(identity)))
    except agev1.AgeRefused as exc:
        raise DecryptError(f"object {name} failed to decrypt: {exc}") from exc


# -- age v1 in memory: keys for the objects' writer and reader (common/crypto/agev1.py) --------


@functools.lru_cache(maxsize=8)
def _x25519_identity(identity: str) -> tuple[X25519PrivateKey, bytes]:
    """The private key of an ``AGE-SECRET-KEY-1...`` identity and its public bytes (pyrage
    checks the encoding first: bech32 with its checksum, KeyFileError if malformed)."""
    _identity(identity)
    key = X25519PrivateKey.from_private_bytes(agev1.bech32_key(identity))
    return key, key.public_key().public_bytes_raw()


@functools.lru_cache(maxsize=16)
def _x25519_recipient(recipient: str) -> bytes:
    """The public key of an ``age1...`` recipient (pyrage checks the encoding first)."""
    _parsed((recipient,))
    return agev1.bech32_key(recipient)


class _HashingSink:
    """Hashes and counts what is written; records the sink's own write error (pyrage reports
    every failure inside decrypt_io as the same OSError, damaged input included)."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.size = 0
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            self._sink.write(data)
        except OSError as exc:
            self.error = exc
            raise
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()


def decrypt_file_to(src: Path, dst: BinaryIO, identity: str) -> tuple[str, int]:
    """Decrypt the age file *src* into *dst*; return (plaintext sha256, size).

    On damaged input pyrage raises after writing most of the plaintext: the caller must write
    into a temporary file and delete it when this raises. Damaged or foreign input raises
    :class:`DecryptError`; a failed write to *dst* (a full disk) or read of *src* (a failing
    drive) raises that OSError itself, so that it is not mistaken for a bad file.
    """
    sink = _HashingSink(dst)
    with src.open("rb") as fh:
        source = RecordingReader(cast(BinaryIO, fh))
        try:
            pyrage.decrypt_io(source, sink, [_identity(identity)])
        except (pyrage.DecryptError, OSError) as exc:
            if sink.error is not None:
                raise sink.error from exc
            if source.error is not None:
                raise source.error from exc
            raise DecryptError(f"object {src.name} failed to decrypt: {exc}") from exc
    return sink._hash.hexdigest(), sink.size


def age_passphrase_encrypt(data: bytes, passphrase: str) -> bytes:
    """Encrypt with age's scrypt passphrase recipient (stock ``age -d`` decrypts it)."""
    if not passphrase:
        raise PassphraseError("an empty passphrase cannot protect a key", hint="Choose one.")
    return bytes(pyrage.passphrase.encrypt(data, passphrase))


def age_passphrase_decrypt(data: bytes, passphrase: str) -> bytes:
    try:
        return bytes(pyrage.passphrase.decrypt(data, passphrase))
    except pyrage.DecryptError as exc:
        raise PassphraseError("the passphrase does not open this age file") from exc


# -- secrets at rest --------------------------------------------------------------------------


def _scrypt(passphrase: str, salt: bytes, log_n: int, r: int = 8, p: int = 1) -> bytes:
    return Scrypt(salt=salt, length=32, n=1 << log_n, r=r, p=p).derive(passphrase.encode())


def seal_secret(
    secret: bytes, passphrase: str, *, purpose: str, public: str, log_n: int = DEFAULT_KDF_LOG_N
) -> bytes:
    """Seal *secret* under *passphrase*; return the key file's bytes (JSON, public fields clear).

    *purpose* and *public* (the public half of the key) are authenticated, so a key file cannot
    be passed off for another key or another role.
    """
    if not MIN_KDF_LOG_N <= log_n <= MAX_KDF_LOG_N:
        raise ValueError(f"scrypt cost 2^{log_n} outside 2^{MIN_KDF_LOG_N}..2^{MAX_KDF_LOG_N}")
    if not passphrase:
        raise PassphraseError("an empty passphrase cannot protect a key", hint="Choose one.")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    aad = f"{SECRET_FORMAT}\0{purpose}\0{public}".encode()
    ciphertext = ChaCha20Poly1305(_scrypt(passphrase, salt, log_n)).encrypt(nonce, secret, aad)
    doc = {
        "format": SECRET_FORMAT,
        "purpose": purpose,
        "public": public,
        "kdf": {"name": "scrypt", "log_n": log_n, "r": 8, "p": 1, "salt": _b64(salt)},
        "aead": {"name": "chacha20-poly1305", "nonce": _b64(nonce)},
        "ciphertext": _b64(ciphertext),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def read_sealed_public(blob: bytes, *, purpose: str) -> str:
    """The public half recorded in a sealed key file, checked to be of *purpose*."""
    return str(_parse_sealed(blob, purpose)["public"])


def open_secret(blob: bytes, passphrase: str, *, purpose: str) -> bytes:
    """Open a key file written by :func:`seal_secret`; raise PassphraseError if it does not open."""
    doc = _parse_sealed(blob, purpose)
    try:
        kdf, aead = doc["kdf"], doc["aead"]
        log_n, r, p = int(kdf["log_n"]), int(kdf["r"]), int(kdf["p"])
        if kdf["name"] != "scrypt" or aead["name"] != "chacha20-poly1305":
            raise KeyFileError("the key file uses an unknown cipher")
        if not MIN_KDF_LOG_N <= log_n <= MAX_KDF_LOG_N or not (1 <= r <= 32 and 1 <= p <= 16):
            raise KeyFileError("the key file's scrypt cost is out of range")
        salt, nonce = _unb64(kdf["salt"]), _unb64(aead["nonce"])
        ciphertext = _unb64(doc["ciphertext"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError("the key file is damaged") from exc
    aad = f"{SECRET_FORMAT}\0{purpose}\0{doc['public']}".encode()
    try:
        key = _scrypt(passphrase, salt, log_n, r, p)
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise PassphraseError("the passphrase does not open this key") from exc


def _parse_sealed(blob: bytes, purpose: str) -> dict[str, Any]:
    try:
        doc = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError("the key file is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("format") != SECRET_FORMAT:
        raise KeyFileError("the file is not a key file of this tool")
    if doc.get("purpose") != purpose:
        raise KeyFileError(f"the key file holds a {doc.get('purpose')!r} key, not {purpose!r}")
    return doc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(text, validate=True)


# -- Ed25519 signatures -----------------------------------------------------------------------


def generate_signing_seed() -> bytes:
    """A fresh Ed25519 private key as its 32-byte seed."""
    return Ed25519PrivateKey.generate().private_bytes_raw()


def public_key(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def sign(seed: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when *signature* is a valid Ed25519 signature of *message* by *public*."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def fingerprint(public: bytes) -> str:
    """Short, readable fingerprint of an Ed25519 public key: ``3f2a-91bc-...`` (8 groups)."""
    digest = hashlib.sha256(b"ed25519:" + public).hexdigest()[:32]
    return "-".join(digest[i : i + 4] for i in range(0, 32, 4))


# -- symmetric helpers for local state --------------------------------------------------------


def derive_key(seed: bytes, purpose: str) -> bytes:
    """A 32-byte key for *purpose* derived from a device seed (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(seed)


def keyed_hash(key: bytes, data: bytes) -> str:
    """HMAC-SHA256 hex: a lookup key for private values that must not be stored in clear."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def seal_local(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def open_local(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return ChaCha20Poly1305(key).decrypt(blob[:12], blob[12:], aad)
    except InvalidTag as exc:
        raise KeyFileError("local state does not open with this device's key") from exc


# -- operator passphrase hashes ---------------------------------------------------------------

PASSPHRASE_HASH_SCHEME = "scrypt"  # noqa: S105 - a scheme name


def hash_passphrase(passphrase: str, *, log_n: int = DEFAULT_KDF_LOG_N) -> str:
    """A self-describing scrypt hash of *passphrase* for storage in a database.

    Format: ``scrypt$ln=<log2 N>,r=8,p=1$<salt, base64>$<32-byte hash, base64>``. The cost is
    stored in the string, so a hash made at another cost keeps verifying after the default
    changes.
    """
    if not MIN_KDF_LOG_N <= log_n <= MAX_KDF_LOG_N:
        raise ValueError(f"scrypt cost 2^{log_n} outside 2^{MIN_KDF_LOG_N}..2^{MAX_KDF_LOG_N}")
    if not passphrase:
        raise PassphraseError("an empty passphrase cannot be set", hint="Choose one.")
    salt = secrets.token_bytes(16)
    digest = _scrypt(passphrase, salt, log_n)
    return f"{PASSPHRASE_HASH_SCHEME}$ln={log_n},r=8,p=1${_b64(salt)}${_b64(digest)}"


def passphrase_hash_cost(encoded: str) -> tuple[int, int, int]:
    """The (log2 N, r, p) a hash from :func:`hash_passphrase` records; ValueError if malformed."""
    scheme, params, _salt, _digest = encoded.split("$")
    if scheme != PASSPHRASE_HASH_SCHEME:
        raise ValueError(f"unknown passphrase hash scheme {scheme!r}")
    fields = dict(part.split("=", 1) for part in params.split(","))
    log_n, r, p = int(fields["ln"]), int(fields["r"]), int(fields["p"])
    if not MIN_KDF_LOG_N <= log_n <= MAX_KDF_LOG_N or not (1 <= r <= 32 and 1 <= p <= 16):
        raise ValueError("scrypt cost out of range")
    return log_n, r, p


def verify_passphrase(passphrase: str, encoded: str) -> bool:
    """True when *passphrase* matches *encoded* (constant-time comparison of the hashes).

    Raises ValueError when *encoded* is not a hash written by :func:`hash_passphrase`.
    """
    try:
        log_n, r, p = passphrase_hash_cost(encoded)
        salt, digest = _unb64(encoded.split("$")[2]), _unb64(encoded.split("$")[3])
    except (KeyError, IndexError) as exc:
        raise ValueError("malformed passphrase hash") from exc
    if len(digest) != 32 or len(salt) < 16:
        raise ValueError("malformed passphrase hash")
    return hmac.compare_digest(_scrypt(passphrase, salt, log_n, r, p), digest)
