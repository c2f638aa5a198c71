"""The decrypted index read more than once: the same entries every time, kept in memory only
for an index of a bounded size."""

from __future__ import annotations

import io
import json
from dataclasses import fields

import pytest

from common.bundle.reader import BundleIndex, IndexEntry
from common.dicomhdr import InstanceHeader
from common.errors import BundleDamaged


def _spool(count: int, *, broken_at: int | None = None) -> io.BytesIO:
    header = {name.name: f"v{name.name}" for name in fields(InstanceHeader)}
    lines = [json.dumps({"kind": "bundle-index"})]
    for seq in range(1, count + 1):
        entry = {"seq": seq, "path": f"objects/{seq:06d}.age", "sha256": "0" * 64, "size": seq}
        lines.append("{" if seq == broken_at else json.dumps({**entry, "header": header}))
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def _index(spool: io.BytesIO) -> BundleIndex:
    return BundleIndex(spool, {"kind": "bundle-index"})


def test_every_pass_gives_the_same_entries_and_a_small_index_is_read_once() -> None:
    spool = _spool(5)
    index = _index(spool)
    first = list(index)
    spool.close()  # a second pass that read the spool again would fail
    assert list(index) == first and [e.seq for e in first] == [1, 2, 3, 4, 5]
    assert all(isinstance(e, IndexEntry) for e in first)


def test_a_big_index_is_read_from_the_spool_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BundleIndex, "KEPT_ENTRIES", 3)
    spool = _spool(5)
    index = _index(spool)
    assert len(list(index)) == 5
    spool.close()
    with pytest.raises(ValueError):  # read again, from the closed spool
        list(index)


def test_a_pass_left_halfway_keeps_nothing() -> None:
    spool = _spool(5)
    index = _index(spool)
    next(iter(index))
    assert [e.seq for e in index] == [1, 2, 3, 4, 5]


def test_a_malformed_entry_is_named_on_every_pass() -> None:
    index = _index(_spool(3, broken_at=2))
    for _ in range(2):
        with pytest.raises(BundleDamaged, match="line 3"):
            list(index)
