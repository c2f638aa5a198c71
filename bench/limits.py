"""What this machine can do at best: the limits the targets are judged against.

* CPU, in this Python: sha256 (hashlib, OpenSSL) and age encryption and decryption (pyrage,
  X25519 + ChaCha20-Poly1305) of 512 KiB objects, one thread; pyrage holds the GIL, so its
  work does not add up across threads of one process. The pull and the import encrypt and
  decrypt with the project's own writer and reader of the format over ``cryptography``
  (``crypto.encrypt_object_bytes``, ``crypto.decrypt_object_bytes``), measured too.
* Disk: 1 GiB written with fsync at the end (dd conv=fsync), read back from a cold cache (dd),
  and the latency of writing and fsyncing one 512 KiB file (median of 200).
* The floor of a pull: a pull must write every object durably AND re-read it from the device
  before sealing (DESIGN.md s6). ``cp -r`` + ``sync`` of the terminal followed by a cold
  re-read of the copy is the least any such program can do on this disk; it is compared with
  half of restic's time (the "2 x restic" target).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import time
from pathlib import Path

from bench.harness import Measurement, Run, drop_caches, measure, tree_bytes
from bench.report import Row
from common import crypto

_OBJECT = 512 << 10


def _rate(label: str, seconds: float, units: float, unit: str) -> Measurement:
    return Measurement(label, [Run(seconds, 0)], units=units, unit_name=unit)


def cpu_rows() -> list[Row]:
    data = os.urandom(_OBJECT)
    rounds = 400
    start = time.perf_counter()
    for _ in range(rounds):
        hashlib.sha256(data).digest()
    sha = time.perf_counter() - start
    keys = crypto.generate_age_keypair()
    recipients = [keys.recipient, crypto.generate_age_keypair().recipient]
    start = time.perf_counter()
    for _ in range(rounds // 2):
        ciphertext = crypto.encrypt_bytes(data, recipients)
    enc = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(rounds // 2):
        crypto.encrypt_object_bytes(data, recipients)
    enc_pull = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(rounds // 2):
        crypto.decrypt_bytes(ciphertext, keys.identity)
    dec = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(rounds // 2):
        crypto.decrypt_object_bytes(ciphertext, keys.identity, "bench")
    dec_import = time.perf_counter() - start
    total = rounds * _OBJECT
    return [
        Row(_rate("sha256, 1 thread", sha, total, "bytes")),
        Row(_rate("age encrypt 512 KiB (pyrage)", enc, total / 2, "bytes")),
        Row(_rate("age encrypt 512 KiB (pull's)", enc_pull, total / 2, "bytes")),
        Row(_rate("age decrypt 512 KiB (pyrage)", dec, total / 2, "bytes")),
        Row(_rate("age decrypt 512 KiB (import's)", dec_import, total / 2, "bytes")),
    ]


def disk_rows(workdir: Path, repeat: int) -> list[Row]:
    scratch = workdir / "limits"
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / "dd.bin"
    write = measure(
        "dd 1 GiB, fsync",
        repeat,
        1 << 30,
        "bytes",
        lambda: target.unlink(missing_ok=True),
        lambda: ["dd", "if=/dev/zero", f"of={target}", "bs=1M", "count=1024", "conv=fsync"],
    )
    read = measure(
        "dd 1 GiB read, cold",
        repeat,
        1 << 30,
        "bytes",
        lambda: None,
        lambda: ["dd", f"if={target}", "of=/dev/null", "bs=1M"],
    )
    target.unlink(missing_ok=True)
    latencies = []
    data = os.urandom(_OBJECT)
    for i in range(200):
        path = scratch / f"f{i}"
        start = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        latencies.append(time.perf_counter() - start)
    shutil.rmtree(scratch)
    fsync = _rate("write+fsync 512 KiB file", statistics.median(latencies), 1, "files")
    return [Row(write), Row(read), Row(fsync, note="median of 200 files, one at a time")]


def pull_floor_row(workdir: Path, term: Path, repeat: int, restic: Measurement | None) -> Row:
    """cp -r + sync, then the copy re-read cold: the least a pull with read-back can take."""
    total, _count = tree_bytes(term)
    copy = workdir / "floor-copy"

    def prepare() -> None:
        shutil.rmtree(copy, ignore_errors=True)
        copy.mkdir(parents=True)

    script = (
        f'cp -r "{term}" "{copy}/t" && sync && echo 3 > /proc/sys/vm/drop_caches && '
        f'find "{copy}/t" -type f -exec cat {{}} + > /dev/null'
    )
    floor = measure(
        "floor: cp+sync+cold re-read", repeat, total, "bytes", prepare, lambda: ["sh", "-c", script]
    )
    shutil.rmtree(copy, ignore_errors=True)
    drop_caches()
    if restic is None or not restic.runs:
        return Row(floor)
    half = restic.median_seconds / 2
    verdict = "possible" if floor.median_seconds <= half else "impossible here"
    note = f"2 x restic needs a pull in {half:.2f} s; the floor is {floor.median_seconds:.2f} s: "
    return Row(floor, note=note + verdict)
