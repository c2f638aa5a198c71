"""The reliability suite's own parts (reliability/): they must be able to fail.

The suite itself runs as `make reliability`, not here; these tests check that its leak
scanner finds what it looks for in every form, that its accounting and verdict count a lost,
duplicated or leaked instance, that its watchdog reports a hang, and that its error check tells
a clean error from an internal one.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from examples.clinic_terminal import TerminalSpec, generate_terminal
from reliability import oracle
from reliability.endstate import no_leaks
from reliability.harness import HEADERS, Row, TrialResult, table, verdict
from reliability.hostile import probe
from reliability.iofaults import clean_error
from reliability.leakscan import (
    Needles,
    name_parts,
    patient_needles,
    scan_bytes,
    scan_tree,
    secret_needles,
)
from reliability.world import Case, Done

NAME = "Müller-Ødegård^Zoë"


def _needles() -> Needles:
    needles = Needles()
    for part in name_parts(NAME):
        needles.add("patient-name", part)
    needles.add("patient-id", "SYN1234567")
    return needles.unique()


def test_a_name_is_found_in_every_encoding_the_scanner_knows() -> None:
    """The name is found written in Latin-1, UTF-16, JSON-escaped and accent-folded forms."""
    needles = _needles()
    for data in (
        "Müller".encode("latin-1"),
        "Ødegård".encode("utf-16-le"),
        json.dumps("Müller-Ødegård").encode(),
        b"MULLER-ODEGARD",
    ):
        assert [leak.kind for leak in scan_bytes("x", b"..." + data + b"...", needles)] == [
            "patient-name"
        ]


def test_short_name_parts_are_not_needles() -> None:
    """A part shorter than six bytes (Zoë) would match ciphertext by chance: not looked for."""
    assert scan_bytes("x", "Zoë".encode(), _needles()) == []


def test_generated_patients_give_needles_of_every_kind(tmp_path: Path) -> None:
    """The terminal's manifest yields names, IDs, birth dates, accessions and UIDs."""
    manifest = generate_terminal(tmp_path, TerminalSpec(seed=1, patients=2, studies=2))
    kinds = {n.kind for n in patient_needles([manifest]).items}
    assert kinds == {"patient-name", "patient-id", "birth-date", "accession", "uid"}


def test_secrets_are_found_raw_hex_and_base64(tmp_path: Path) -> None:
    """A seed written in hex or base64, or any age secret key, in a file is a leak."""
    seed = os.urandom(32)
    needles = secret_needles(identities=[], seeds=[seed], passphrases=["pass-phrase-1"])
    (tmp_path / "a").write_bytes(seed.hex().upper().encode())
    (tmp_path / "b").write_bytes(base64.b64encode(seed))
    (tmp_path / "c").write_bytes(b"AGE-SECRET-KEY-1QQQ")
    (tmp_path / "d").write_bytes(b"nothing here")
    found = {(leak.where, leak.kind) for leak in scan_tree(tmp_path, needles, label="t")}
    assert found == {("t/a", "signing-seed"), ("t/b", "signing-seed"), ("t/c", "age-secret-key")}


def test_accounting_counts_lost_duplicated_and_altered() -> None:
    """An instance missing, carried twice or with other bytes is counted as such."""
    expected = {"1": b"one", "2": b"two", "3": b"three"}
    found = {
        "1": [oracle.sha(b"one"), oracle.sha(b"one")],
        "2": [oracle.sha(b"other")],
    }
    result = oracle.account(expected, found)
    assert (result.lost, result.duplicated, result.altered) == (["3"], ["1"], ["2"])


def test_verdict_fails_on_a_lost_instance_a_leak_or_a_failed_check() -> None:
    """One lost instance, one leak or one failed check makes the run fail; none passes."""
    clean = Row("x")
    clean.add("t", TrialResult("ok"))
    assert verdict([clean]) == 0
    for bad in (TrialResult("ok", lost=1), TrialResult("ok", leaks=1), TrialResult("ok")):
        row = Row("y")
        if not (bad.lost or bad.leaks):
            bad.fail("a check failed")
        row.add("t", bad)
        assert verdict([clean, row]) == 1
    assert verdict([Row("no trials")]) == 1


def test_table_has_the_seven_columns() -> None:
    """The final table names the scenario, trials, faults, outcomes, lost, duplicated, leaks."""
    row = Row("scenario 1")
    row.add("t", TrialResult("ok", faults=2))
    text = table([row])
    assert all(h in text.splitlines()[0] for h in HEADERS)
    assert "ok 1" in text


def test_watchdog_reports_a_file_whose_header_read_hangs(tmp_path: Path) -> None:
    """A named pipe with no writer blocks the reader: the watchdog reports it as a hang."""
    pipe = tmp_path / "pipe.dcm"
    os.mkfifo(pipe)
    result = TrialResult("?")
    probe([pipe], result, limit=1.0)
    assert result.failures and "hung" in result.failures[0]


def test_clean_error_tells_a_domain_error_from_an_internal_one() -> None:
    """Exit 12 with a panel is clean; exit 70, or no panel, is not."""
    ok = TrialResult("?")
    clean_error(Done(["courier"], 12, "", "╭─ error: drive-full ─╮", 0.0), ok)
    assert ok.failures == []
    internal = TrialResult("?")
    clean_error(Done(["courier"], 70, "", "internal error", 0.0), internal)
    assert internal.failures
    bare = TrialResult("?")
    clean_error(Done(["courier"], 12, "", "drive full", 0.0), bare)
    assert bare.failures


def test_no_leaks_scans_the_drive_the_courier_home_and_every_output(tmp_path: Path) -> None:
    """A name on the drive, in the courier's home or in stderr is a leak each; on the center's
    stdout (which lists studies for its staff) it is not."""
    case = Case(tmp_path)
    case.drive.mkdir()
    case.home.mkdir()
    needles = _needles()
    clean = TrialResult("?")
    no_leaks(case, needles, clean, [Done(["center"], 0, "Müller", "", 0.0)], courier=False)
    assert clean.leaks == 0 and clean.failures == []
    (case.drive / "index.json").write_text('{"name": "Müller-Ødegård"}')
    (case.home / "journal.txt").write_text("SYN1234567")
    runs = [Done(["courier"], 12, "", "error: drive-full for Müller", 0.0)]
    found = TrialResult("?")
    no_leaks(case, needles, found, runs, courier=True)
    assert found.leaks == 3 and found.failures


def test_a_column_a_scenario_does_not_measure_shows_a_dash_unless_counted() -> None:
    """'-' marks what a scenario does not measure; a count there still shows, and fails."""

    def last_cells(row: Row) -> list[str]:
        return [cell.strip() for cell in table([row]).splitlines()[-1].split("|")[-4:-1]]

    row = Row("6 trust", measures=frozenset({"leaks"}))
    row.add("t", TrialResult("refused"))
    assert last_cells(row) == ["-", "-", "0"] and verdict([row]) == 0
    row.add("u", TrialResult("refused", lost=1))
    assert last_cells(row) == ["1", "-", "0"] and verdict([row]) == 1
