"""An import killed while writing a storage receipt leaves temporary files, which the re-run
removes (found by the reliability suite's crash scenario, reliability/crashes.py: they stayed in
the archive's receipts and outbox folders for ever)."""

from __future__ import annotations

from center.core.archive import Archive, CenterKeys
from center.core.outbox import outbox_folder
from center.core.storage_receipts import finish_receipts
from common.fsio import TEMP_SUFFIX
from tests.center.intake.conftest import World, run_import
from tests.conftest import NOW


def test_rewriting_a_receipt_removes_what_a_crash_left_of_it(
    world: World, archive: Archive, keys: CenterKeys
) -> None:
    """Temporary files of a receipt whose writing was interrupted are gone once it is written."""
    [outcome] = run_import(archive, keys, world.drive).outcomes
    receipt_id, facility = outcome.receipt_id, outcome.facility_id
    archive.conn.execute("UPDATE storage_receipts SET files_written = 0")  # as before the crash
    folders = [archive.paths.receipts / facility, outbox_folder(archive.paths, facility)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f".{receipt_id}.json.0badf00d{TEMP_SUFFIX}").write_bytes(b"{")
    other = folders[0] / f".another-document.json.12345678{TEMP_SUFFIX}"
    other.write_bytes(b"{")
    finish_receipts(archive, keys, NOW)
    assert [p.name for f in folders for p in f.glob(f".{receipt_id}.*")] == []
    assert (folders[0] / f"{receipt_id}.json").is_file()
    assert other.exists()  # another document's write is not this receipt's to clean
