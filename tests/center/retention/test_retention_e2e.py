"""The real import path (courier pull, center import) computes expiry with the archive's rules."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from center.core.archive import Archive, CenterKeys
from center.core.importer import IMPORTED, import_drive
from center.core.retention import install_rules
from center.core.retention_apply import apply_rules
from common.retention import add_years, parse_da
from common.retention_rules import preset_text
from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from tests.conftest import NOW, Terminal
from tests.helpers import do_pull


def test_import_applies_last_visit_rules_across_a_patients_studies(
    device: UnlockedDevice,
    drive: Drive,
    terminal: Terminal,
    archive: Archive,
    center_keys: CenterKeys,
) -> None:
    """Under the England preset every imported study of a patient is kept at least 8 years
    after that patient's latest study, whatever order the bundle brought them in."""
    install_rules(
        archive.conn, preset_text("england"), origin="preset:england", operator="A", now=NOW
    )
    do_pull(device, drive, terminal.root)
    report = import_drive(archive, center_keys, drive.root, operator="Importer", now=NOW)
    assert [o.status for o in report.outcomes] == [IMPORTED]
    last_visit: dict[str, date] = defaultdict(lambda: date.min)
    for study in terminal.manifest.a_studies:
        day = parse_da(study.study_date)
        assert day is not None
        last_visit[study.patient_id] = max(last_visit[study.patient_id], day)
    stored = {
        str(r[0]): date.fromisoformat(str(r[1]))
        for r in archive.conn.execute("SELECT study_instance_uid, expiry FROM studies")
    }
    assert len(stored) == len(terminal.manifest.a_studies)
    for study in terminal.manifest.a_studies:
        assert stored[study.study_instance_uid] >= add_years(last_visit[study.patient_id], 8)
    assert (
        apply_rules(
            archive.conn, archive.store, now=NOW, operator="A", lock_root=archive.paths.root
        ).changes
        == []
    )
