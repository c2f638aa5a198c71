"""Crypto primitives: guarded encryption, sealed secrets, signatures."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pyrage
import pytest

from common import crypto
from common.errors import KeyFileError, PassphraseError


def test_encrypt_to_file_round_trips(tmp_path: Path) -> None:
    """An object decrypts back to its plaintext, and the digests describe both sides."""
    pair = crypto.generate_age_keypair()
    data = os.urandom(200_000)
    digest = crypto.encrypt_to_file(io.BytesIO(data), tmp_path / "o.age", [pair.recipient])
    blob = (tmp_path / "o.age").read_bytes()
    assert digest.plain_size == len(data) and digest.cipher_size == len(blob)
    assert crypto.decrypt_bytes(blob, pair.identity) == data


SWALLOWED_SIZE = 70_000  # 64 KiB + 4464 bytes: the last chunk is small


class _CountingSink:
    def __init__(self, fail_at: int | None = None) -> None:
        self.calls = 0
        self.fail_at = fail_at

    def write(self, data: bytes) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(data)

    def flush(self) -> None:
        pass


def _writes_for(size: int, recipient: str) -> int:
    sink = _CountingSink()
    pyrage.encrypt_io(io.BytesIO(b"x" * size), sink, [pyrage.x25519.Recipient.from_str(recipient)])
    return sink.calls


def test_pyrage_swallows_a_final_write_error() -> None:
    """Documents the upstream defect the guarded writer exists for: an error raised by the
    sink's last write is not reported by pyrage.encrypt_io (if this fails, pyrage fixed it)."""
    recipient = crypto.generate_age_keypair().recipient
    # A final STREAM chunk under pyrage's 8 KiB buffer is written at drop time, unchecked.
    last = _writes_for(SWALLOWED_SIZE, recipient)
    sink = _CountingSink(fail_at=last)
    pyrage.encrypt_io(
        io.BytesIO(b"x" * SWALLOWED_SIZE), sink, [pyrage.x25519.Recipient.from_str(recipient)]
    )
    assert sink.calls == last  # the failing write happened, and no exception came back


@pytest.mark.parametrize("fail_at", [1, 2, 3, "last"])
def test_enospc_at_any_write_raises_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int | str
) -> None:
    """A full disk at any write, including the last one pyrage swallows, is reported and the
    partial file removed."""
    recipient = crypto.generate_age_keypair().recipient
    size = SWALLOWED_SIZE
    target_call = _writes_for(size, recipient) if fail_at == "last" else int(fail_at)
    real_write = os.write
    state = {"n": 0}

    def failing_write(fd: int, data: bytes) -> int:
        state["n"] += 1
        if state["n"] == target_call:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(crypto.os, "write", failing_write)
    target = tmp_path / "o.age"
    with pytest.raises(OSError) as info:
        crypto.encrypt_to_file(io.BytesIO(b"y" * size), target, [recipient])
    assert info.value.errno == errno.ENOSPC
    assert not target.exists()


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A device that accepts fewer bytes than offered still receives every byte."""
    real_write = os.write
    monkeypatch.setattr(crypto.os, "write", lambda fd, data: real_write(fd, bytes(data)[:1000]))
    pair = crypto.generate_age_keypair()
    data = os.urandom(50_000)
    crypto.encrypt_to_file(io.BytesIO(data), tmp_path / "o.age", [pair.recipient])
    assert crypto.decrypt_bytes((tmp_path / "o.age").read_bytes(), pair.identity) == data


def test_sealed_secret_opens_only_with_its_passphrase() -> None:
    """A sealed key opens with the right passphrase and refuses a wrong one."""
    blob = crypto.seal_secret(b"secret", "right", purpose="p", public="pub", log_n=10)
    assert crypto.open_secret(blob, "right", purpose="p") == b"secret"
    with pytest.raises(PassphraseError):
        crypto.open_secret(blob, "wrong", purpose="p")


def test_sealed_secret_is_bound_to_its_purpose_and_public_half() -> None:
    """A key file cannot be passed off as another kind of key or another key's."""
    blob = crypto.seal_secret(b"secret", "pw", purpose="p", public="pub", log_n=10)
    with pytest.raises(KeyFileError):
        crypto.open_secret(blob, "pw", purpose="other")
    swapped = blob.replace(b'"public": "pub"', b'"public": "bup"')
    with pytest.raises(PassphraseError):
        crypto.open_secret(swapped, "pw", purpose="p")


def test_sealed_secret_records_its_scrypt_cost() -> None:
    """The default cost is 2^17 and is written into the key file."""
    assert crypto.DEFAULT_KDF_LOG_N == 17
    blob = crypto.seal_secret(b"s3cr3t-value", "pw", purpose="p", public="x", log_n=11)
    assert b'"log_n": 11' in blob and b"s3cr3t-value" not in blob


def test_signatures_verify_only_for_the_signed_message() -> None:
    """An Ed25519 signature verifies for its message and key, and for nothing else."""
    seed = crypto.generate_signing_seed()
    sig = crypto.sign(seed, b"message")
    public = crypto.public_key(seed)
    assert crypto.verify_signature(public, b"message", sig)
    assert not crypto.verify_signature(public, b"messagE", sig)
    other = crypto.public_key(crypto.generate_signing_seed())
    assert not crypto.verify_signature(other, b"message", sig)


def test_fingerprint_is_eight_groups_of_four_hex_digits() -> None:
    """Fingerprints are short enough to read aloud and stable for a key."""
    public = crypto.public_key(crypto.generate_signing_seed())
    fp = crypto.fingerprint(public)
    assert fp == crypto.fingerprint(public)
    groups = fp.split("-")
    assert len(groups) == 8 and all(len(g) == 4 for g in groups)
    int("".join(groups), 16)


class _FullDisk(io.BytesIO):
    """A sink whose disk fills up after *room* bytes."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def _sealed(tmp_path: Path, size: int) -> tuple[Path, str]:
    keys = crypto.generate_age_keypair()
    path = tmp_path / "object.age"
    path.write_bytes(crypto.encrypt_bytes(os.urandom(size), [keys.recipient]))
    return path, keys.identity


def test_a_full_disk_while_decrypting_is_that_oserror_not_a_bad_file(tmp_path: Path) -> None:
    """ENOSPC writing the plaintext comes out as ENOSPC, not as a file that fails to decrypt
    (which the import would blame on the bundle: another center's key)."""
    path, identity = _sealed(tmp_path, 200_000)
    with pytest.raises(OSError) as caught:
        crypto.decrypt_file_to(path, _FullDisk(100_000), identity)
    assert caught.value.errno == errno.ENOSPC
    assert not isinstance(caught.value, crypto.DecryptError)


def test_a_failing_read_while_decrypting_is_that_oserror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO reading the encrypted file (a failing drive) comes out as EIO."""
    path, identity = _sealed(tmp_path, 200_000)
    real_open = Path.open

    class Failing(io.BufferedReader):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 70_000:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return super().read(size)

    def failing_open(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if self == path:
            return Failing(real_open(self, "rb", buffering=0))  # type: ignore[arg-type]
        return real_open(self, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", failing_open)
    with pytest.raises(OSError) as caught:
        crypto.decrypt_file_to(path, io.BytesIO(), identity)
    assert caught.value.errno == errno.EIO


def test_damaged_input_is_a_decrypt_error(tmp_path: Path) -> None:
    """A flipped byte in the payload is a DecryptError, as before."""
    path, identity = _sealed(tmp_path, 200_000)
    data = bytearray(path.read_bytes())
    data[150_000] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt_file_to(path, io.BytesIO(), identity)
