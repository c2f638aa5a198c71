"""The audit entries of search, export and requests hold no patient data, only labels."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from center.cli.app import app
from center.core import audit
from center.core.archive import open_archive
from center.core.studyref import patient_label
from tests.center.access.conftest import Imported, cli_env


def test_access_audit_entries_name_no_patient(imported: Imported, tmp_path: Path) -> None:
    """After searches, an export and a request, no audit entry holds a name, an ID, an
    accession or a UID of the patient; the patient's label is there to find them by."""
    study = imported.manifest.a_studies[0]
    env = cli_env(imported.root, "exp")
    runner = CliRunner()
    family = study.patient_name.split("^")[0].split("=")[0]
    for args in (
        ["search", "--name", family],
        ["search", "--patient-id", study.patient_id, "--accession", study.accession],
        ["search", "--study", study.study_instance_uid],
        [
            "export",
            "--patient-id",
            study.patient_id,
            "--to",
            str(tmp_path / "cd"),
            "--purpose",
            "transfer",
        ],
        [
            "request",
            "add",
            "clinic-1",
            "--patient-id",
            study.patient_id,
            "--purpose",
            "copy",
            "--accession",
            study.accession,
        ],
    ):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
    with open_archive(imported.root) as archive:
        rows = archive.conn.execute(
            "SELECT details, target FROM audit WHERE action IN ('search', 'export', 'request')"
        ).fetchall()
        entries = audit.entries(archive.conn)
    text = " ".join(f"{r[0]} {r[1]}" for r in rows)
    assert len(rows) == 5
    identifying = [study.patient_id, study.accession, study.study_instance_uid, family.lower()]
    identifying += [i.sop_instance_uid for i in study.instances]
    assert [value for value in identifying if value.lower() in text.lower()] == []
    label = patient_label("clinic-1", study.patient_id)
    assert sum(label in str(e.details) for e in entries) >= 3
