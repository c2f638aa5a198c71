"""Journal lookup keys stay what earlier versions wrote (a journal outlives an upgrade)."""

from __future__ import annotations

from common.crypto import keyed_hash
from courier.core.journal import Journal


def test_file_keys_are_the_keyed_hash_of_facility_and_path() -> None:
    """A file's key is HMAC(journal key, "file\\0<facility>\\0<relative path>"), however many
    keys of however many facilities are computed in a row."""
    key = bytes(range(32))
    journal = Journal(None, key)  # type: ignore[arg-type] - keys need no database
    for facility, relpath in [("a", "x.dcm"), ("b", "x.dcm"), ("a", "DICOM/é/1.dcm"), ("a", "")]:
        expected = keyed_hash(key, f"file\0{facility}\0{relpath}".encode())
        assert journal.file_key(facility, relpath) == expected
