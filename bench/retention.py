"""Retention on a large catalog: `retention apply`, `expiry list` and `expiry purge` timings.

    python -m bench.retention [--studies 100000] [--preset england] [--workdir DIR]

Fills a fresh catalog (the real migrations) directly with SQL: ``--studies`` studies of three
instances each, about three studies per patient, study dates spread over 2000-2026, stored
expiry from the built-in default rule. Then installs ``--preset`` and times, as library calls
(no operator login, no Python start-up), each step once: a dry-run apply, the apply, a second
apply (nothing left to change), `expiry list --due-within 90d`, a dry-run purge and the purge
under a delete contract. Prints the peak resident memory. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from center.core.catalog import open_catalog
from center.core.expiry import study_states
from center.core.facilities import set_contract
from center.core.purge import purge
from center.core.retention import install_rules
from center.core.retention_apply import apply_rules
from center.core.store import ObjectStore
from common.retention import add_years
from common.retention_rules import preset_text
from common.sqlitedb import transaction

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def fill(conn: sqlite3.Connection, studies: int, seed: int = 1) -> None:
    rng = random.Random(seed)  # noqa: S311 - synthetic, non-secret data
    patients = studies // 3 + 1
    with transaction(conn):
        conn.execute("INSERT INTO facilities VALUES ('c1', '', 'bench')")
        conn.execute(
            "INSERT INTO devices (device_id, fingerprint, operator, signing_public, recipient, "
            "card, enrolled_at, enrolled_by, status) "
            "VALUES ('d', 'f', 'o', x'00', 'r', x'00', 'x', 'x', 'active')"
        )
        conn.execute(
            "INSERT INTO bundles (bundle_id, device_id, facility_id, created, imported_at, "
            "imported_by, status, object_count, stored_count, reception_operator, "
            "reception_date, reception) VALUES ('b', 'd', 'c1', 'x', 'x', 'x', 'imported', 0, 0, "
            "'x', 'x', '{}')"
        )
        conn.executemany(
            "INSERT INTO patients (patient_pk, facility_id, patient_id, patient_name, "
            "birth_date, sex) VALUES (?, 'c1', ?, 'Bench^Synthetic', ?, 'O')",
            [(p + 1, f"P{p}", f"{rng.randint(1930, 2020)}0101") for p in range(patients)],
        )
        instance = 0
        for s in range(studies):
            day = date(2000, 1, 1) + timedelta(days=rng.randint(0, 9500))
            modality = rng.choice(["CR", "CT", "MG", "MR", "SR"])
            conn.execute(
                "INSERT INTO studies (study_pk, facility_id, patient_pk, study_instance_uid, "
                "accession, study_id, study_date, study_time, description, modalities, "
                "body_part, first_received, expiry, expiry_rule, expiry_anchor, "
                "study_date_flagged) VALUES (?, 'c1', ?, ?, ?, '1', ?, '', '', ?, '', ?, ?, "
                "'default/ten-years: 10 years from the study date', 'study-date', 0)",
                (
                    s + 1,
                    rng.randint(1, patients),
                    f"1.{s}",
                    f"A{s}",
                    f"{day:%Y%m%d}",
                    modality,
                    (day + timedelta(days=3)).isoformat(),
                    add_years(day, 10).isoformat(),
                ),
            )
            conn.execute(
                "INSERT INTO series VALUES (?, ?, ?, ?, '')", (s + 1, s + 1, f"1.{s}.1", modality)
            )
            for k in range(3):
                instance += 1
                conn.execute(
                    "INSERT INTO instances (series_pk, sop_instance_uid, sop_class_uid, "
                    "transfer_syntax_uid, sha256, size, bundle_id, bundle_seq, source_relpath, "
                    "received, conflict) "
                    "VALUES (?, ?, '1.2.3', '1.2', ?, 100, 'b', 0, 'x', 'x', 0)",
                    (s + 1, f"1.{s}.1.{k}", f"{instance:064x}"),
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--preset", default="england")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-retention-", dir=args.workdir))
    try:
        conn = open_catalog(root / "catalog.sqlite")
        started = time.perf_counter()
        fill(conn, args.studies)
        print(f"catalog of {args.studies} studies: {time.perf_counter() - started:.1f} s")
        store = ObjectStore(root / "objects")
        install_rules(conn, preset_text(args.preset), origin=args.preset, operator="b", now=NOW)

        def apply(dry: bool) -> int:
            report = apply_rules(conn, store, now=NOW, operator="b", dry_run=dry, lock_root=root)
            return len(report.changes)

        def purge_run(execute: bool) -> int:
            report = purge(conn, store, now=NOW, operator="b", execute=execute, lock_root=root)
            return len(report.deleted if execute else report.due)

        horizon = NOW.date() + timedelta(days=90)
        steps: list[tuple[str, Callable[[], int]]] = [
            ("retention apply --dry-run", lambda: apply(True)),
            ("retention apply", lambda: apply(False)),
            ("retention apply (again)", lambda: apply(False)),
            (
                "expiry list --due-within 90d",
                lambda: len(study_states(conn, store, now=NOW, horizon=horizon)),
            ),
            ("expiry purge (dry run)", lambda: purge_run(False)),
            ("expiry purge --yes", lambda: purge_run(True)),
        ]
        for name, step in steps:
            if name == "expiry purge (dry run)":
                set_contract(conn, "c1", on_expiry="delete", grace_days=0, operator="b", now=NOW)
            started = time.perf_counter()
            count = step()
            print(f"{name:<30} {time.perf_counter() - started:7.2f} s  ({count} studies)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak resident memory {peak:.0f} MB")
        conn.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
