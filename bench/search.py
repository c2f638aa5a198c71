"""`center search` on a large catalog: 1,000,000 instances in 200,000 studies.

    python -m bench.search [--studies 200000] [--instances 1000000] [--repeat 7] [--workdir DIR]

Creates an archive (`center init` as a library call, with an admin operator) and fills its
catalog directly with SQL (through the real migrations, so the indexes and name-key triggers
are the ones `center` uses). Then, per query of a fixed set:

* ``cold ms``: the first :func:`~center.core.search.find_studies` on a fresh connection after
  the page cache was dropped (when allowed, as root);
* ``find ms``: the median of ``--repeat`` warm runs of ``find_studies`` (query and row sizes);
* ``+audit ms``: the same through :func:`~center.core.search.search`, which also writes the
  audit entry as the command does.

Last, the whole command, ``center search --name ... --json``, as a subprocess: Python start-up,
operator login (scrypt at the default cost 2^17), query and audit entry; median of the runs.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.harness import Measurement, Run, drop_caches, run_timed
from bench.report import Row
from center.core.catalog import open_catalog
from center.core.initialise import create_archive
from center.core.search import StudyQuery, find_studies, search
from common.environment import Environment

FAMILY = (
    "Ashworth",
    "Blackwood",
    "Carrington",
    "Davenport",
    "Ellingham",
    "Fairbanks",
    "Greenhalgh",
    "Hollingsworth",
    "Inglewood",
    "Kettleborough",
    "Lockhart",
    "Merriweather",
    "Northcott",
    "Oakenfold",
    "Pemberton",
    "Quenby",
    "Müller",
    "Schäfer",
    "Ødegård",
    "Çelik",
    "Öztürk",
    "Núñez",
    "Dvořák",
    "Łukasiewicz",
    "Søndergaard",
    "Ibáñez",
)
GIVEN = (
    "Araminta",
    "Beatrix",
    "Cordelia",
    "Delphine",
    "Evangeline",
    "Florentina",
    "Alistair",
    "Barnaby",
    "Cornelius",
    "Desmond",
    "Ebenezer",
    "Fitzgerald",
    "Jürgen",
    "Björn",
    "François",
    "Håkon",
    "José",
    "Tomáš",
    "Zoë",
    "Inès",
)
JAPANESE = ("Yamada^Tarou=山田^太郎", "Suzuki^Hanako=鈴木^花子", "Tanaka^Makoto=田中^誠")
MODALITIES = ("CR", "DX", "CT", "MR", "MG", "US")
NOW = datetime(2026, 11, 22, tzinfo=UTC)
PASSPHRASES = {
    "CENTER_PASSPHRASE": "bench-center-pass",
    "CENTER_ESCROW_PASSPHRASE": "bench-escrow-pass",
    "CENTER_OPERATOR_PASSPHRASE": "bench-operator-pass",
}


def _name(rng: random.Random, n: int) -> str:
    if n % 50 == 0:
        return rng.choice(JAPANESE)
    return f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}"


def build(path: Path, *, studies: int, instances: int, seed: int = 6) -> None:
    """A catalog of *studies* studies holding *instances* instances, written with plain SQL."""
    rng = random.Random(seed)  # noqa: S311 - synthetic, non-secret data
    conn = open_catalog(path)
    conn.execute("PRAGMA synchronous=OFF")  # a throwaway benchmark catalog
    patients = max(1, studies // 4)
    facilities = [f"clinic-{i:02d}" for i in range(20)]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO facilities (facility_id, created) VALUES (?, '2020-01-01')",
        [(f,) for f in facilities],
    )
    conn.execute(
        "INSERT INTO devices VALUES ('courier-bench', 'fp', 'Bench', x'00', 'age1', x'00', "
        "'2020-01-01', 'bench', 'active', NULL)"
    )
    conn.executemany(
        "INSERT INTO bundles VALUES (?, 'courier-bench', ?, '2020-01-01', '2020-01-02', "
        "'bench', 'imported', 0, 0, 'Bench', '2020-01-02', '{}')",
        [(f"bundle-{f}", f) for f in facilities],
    )
    conn.executemany(
        "INSERT INTO patients (patient_pk, facility_id, patient_id, patient_name, birth_date, "
        "sex) VALUES (?, ?, ?, ?, '19700101', 'O')",
        [(n, facilities[n % 20], f"P{n:07d}", _name(rng, n)) for n in range(1, patients + 1)],
    )
    first_day = date(2005, 1, 1)
    per_study = instances / studies
    instance_pk = series_pk = 0

    def study_rows() -> Iterator[tuple[object, ...]]:
        for pk in range(1, studies + 1):
            patient = rng.randint(1, patients)
            day = first_day + timedelta(days=rng.randrange(20 * 365))
            yield (
                pk,
                facilities[patient % 20],
                patient,
                f"1.2.826.0.1.3680043.10.1080.{pk}",
                f"A{pk:08d}",
                str(pk),
                day.strftime("%Y%m%d"),
                "101500",
                "Synthetic study",
                rng.choice(MODALITIES),
                "CHEST",
                "2020-01-02",
                (day + timedelta(days=3653)).isoformat(),
                "bench",
                "study-date",
            )

    conn.executemany(
        "INSERT INTO studies (study_pk, facility_id, patient_pk, study_instance_uid, accession, "
        "study_id, study_date, study_time, description, modalities, body_part, first_received, "
        "expiry, expiry_rule, expiry_anchor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        study_rows(),
    )
    series_rows: list[tuple[object, ...]] = []
    instance_rows: list[tuple[object, ...]] = []

    def flush() -> None:
        conn.executemany("INSERT INTO series VALUES (?, ?, ?, ?, ?)", series_rows)
        conn.executemany(
            "INSERT INTO instances (instance_pk, series_pk, sop_instance_uid, sop_class_uid, "
            "transfer_syntax_uid, sha256, size, bundle_id, bundle_seq, source_relpath, "
            "received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            instance_rows,
        )
        series_rows.clear()
        instance_rows.clear()

    for study_pk, facility, modality in conn.execute(
        "SELECT study_pk, facility_id, modalities FROM studies ORDER BY study_pk"
    ).fetchall():
        count = max(1, round(per_study * study_pk) - round(per_study * (study_pk - 1)))
        n_series = min(count, rng.randint(1, 3))
        for s in range(n_series):
            series_pk += 1
            series_rows.append((series_pk, study_pk, f"1.2.3.{study_pk}.{s}", modality, "S"))
            for _ in range(count // n_series + (1 if s < count % n_series else 0)):
                instance_pk += 1
                instance_rows.append(
                    (
                        instance_pk,
                        series_pk,
                        f"1.2.3.{study_pk}.{s}.{instance_pk}",
                        "1.2.840.10008.5.1.4.1.1.2",
                        "1.2.840.10008.1.2.1",
                        f"{instance_pk:064x}",
                        524288,
                        f"bundle-{facility}",
                        instance_pk,
                        "x.dcm",
                        "2020-01-02",
                    )
                )
        if len(instance_rows) >= 50_000:
            flush()
    flush()
    conn.execute("COMMIT")
    conn.execute("PRAGMA optimize")
    conn.close()


QUERIES: list[tuple[str, StudyQuery, dict[str, object]]] = [
    ("patient ID, exact", StudyQuery(patient_id="P0012345"), {}),
    ("name prefix 'müller^j'", StudyQuery(patient_name="müller^j"), {}),
    ("name without accents 'muller^jurgen'", StudyQuery(patient_name="muller^jurgen"), {}),
    ("name, ideographic '山田*'", StudyQuery(patient_name="山田*"), {}),
    ("name, leading wildcard '*^zoë'", StudyQuery(patient_name="*^zoë"), {}),
    ("accession, exact", StudyQuery(accession="A00123456"), {}),
    (
        "facility + one month",
        StudyQuery(facility="clinic-07", date_from=date(2015, 3, 1), date_to=date(2015, 3, 31)),
        {},
    ),
    ("modality CT, newest first", StudyQuery(modality="CT"), {"descending": True}),
    (
        "date range + modality MR",
        StudyQuery(date_from=date(2010, 1, 1), date_to=date(2010, 12, 31), modality="MR"),
        {},
    ),
    (
        "expiring before 2016-01-01, by expiry",
        StudyQuery(expiring_before=date(2016, 1, 1)),
        {"sort": "expiry"},
    ),
    ("everything, by name", StudyQuery(), {"sort": "name"}),
]


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _archive(workdir: Path, studies: int, instances: int) -> Path:
    """The benchmark archive (made once per size and kept in *workdir*)."""
    root = workdir / f"archive-{studies}-{instances}"
    if (root / "center.toml").exists():
        return root
    for leftover in workdir.glob(f"{root.name}*"):
        shutil.rmtree(leftover)
    building = workdir / f"{root.name}.building"
    start = time.perf_counter()
    create_archive(
        building,
        center_name="Bench Center",
        passphrase=PASSPHRASES["CENTER_PASSPHRASE"],
        escrow_passphrase=PASSPHRASES["CENTER_ESCROW_PASSPHRASE"],
        admin="bench",
        admin_passphrase=PASSPHRASES["CENTER_OPERATOR_PASSPHRASE"],
        env=Environment(clock=lambda: NOW),
    )
    build(building / "catalog.sqlite", studies=studies, instances=instances)
    building.rename(root)
    print(f"built {root} in {time.perf_counter() - start:.1f} s")
    return root


def _cold_ms(catalog: Path, query: StudyQuery, kwargs: dict[str, object]) -> float:
    drop_caches()
    conn = open_catalog(catalog)
    start = time.perf_counter()
    find_studies(conn, query, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed * 1000


# The two queries the target names (patient ID; date range + modality).
TARGET_QUERIES = ("patient ID, exact", "date range + modality MR")
TARGET_SECONDS = 0.2


def bench_search(workdir: Path, repeat: int, studies: int, instances: int) -> list[Row]:
    """Rows for `make bench`: the target queries, cold (first run on a fresh connection, page
    cache dropped) and warm with the audit entry the command writes (median of *repeat*)."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = _archive(workdir, studies, instances)
    catalog = root / "catalog.sqlite"
    rows = []
    for label, query, kwargs in QUERIES:
        if label not in TARGET_QUERIES:
            continue
        cold = Measurement(f"search {label}, cold", units=1, unit_name="queries")
        for _ in range(max(1, repeat)):
            cold.runs.append(Run(_cold_ms(catalog, query, kwargs) / 1000, 0))
        conn = open_catalog(catalog)
        warm = Measurement(f"search {label}, warm+audit", units=1, unit_name="queries")
        search(conn, query, operator="bench", now=NOW, **kwargs)  # type: ignore[arg-type]
        for _ in range(max(3, repeat)):
            start = time.perf_counter()
            search(conn, query, operator="bench", now=NOW, **kwargs)  # type: ignore[arg-type]
            warm.runs.append(Run(time.perf_counter() - start, 0))
        total = find_studies(conn, query, **kwargs).total  # type: ignore[arg-type]
        conn.close()
        note = f"{total:,} matching studies of {studies:,} ({instances:,} instances)"
        for m in (cold, warm):
            rows.append(Row(m, target="< 200 ms", maximum_seconds=TARGET_SECONDS, note=note))
            note = ""
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--studies", type=int, default=200_000)
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("bench-data") / "search")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    root = _archive(args.workdir, args.studies, args.instances)
    catalog = root / "catalog.sqlite"
    conn = open_catalog(catalog)
    counts = {
        t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608
        for t in ("patients", "studies", "series", "instances")
    }
    print(", ".join(f"{v:,} {k}" for k, v in counts.items()))
    print(f"warm: median of {args.repeat} runs after one warm-up; limit 100 rows")
    print(f"{'query':40} {'matches':>8} {'cold ms':>8} {'find ms':>8} {'+audit ms':>9}")
    worst = 0.0
    for label, query, kwargs in QUERIES:
        cold = _cold_ms(catalog, query, kwargs)
        result = find_studies(conn, query, **kwargs)  # type: ignore[arg-type]
        find_ms = _median_ms(
            lambda q=query, k=kwargs: find_studies(conn, q, **k),  # type: ignore[misc]
            args.repeat,
        )
        audited_ms = _median_ms(
            lambda q=query, k=kwargs: search(conn, q, operator="bench", now=NOW, **k),  # type: ignore[misc]
            args.repeat,
        )
        worst = max(worst, audited_ms, cold)
        print(f"{label:40} {result.total:>8,} {cold:>8.1f} {find_ms:>8.1f} {audited_ms:>9.1f}")
    conn.close()
    print(f"slowest query (cold, or warm with its audit entry): {worst:.1f} ms")
    env = {**os.environ, **PASSPHRASES, "CENTER_ARCHIVE": str(root), "CENTER_OPERATOR": "bench"}
    env.pop("CLINIC_ARCHIVE_KDF_LOG_N", None)
    # The command of this source tree (not whatever `center` is installed): python -c in it.
    argv_cli = [
        sys.executable,
        "-c",
        "from center.cli.app import main; main()",
        "search",
        "--name",
        "müller^j",
        "--json",
    ]
    tree = Path(__file__).resolve().parent.parent
    runs = [run_timed(argv_cli, env=env, cwd=tree).seconds for _ in range(max(3, args.repeat // 2))]
    print(
        f"`center search --name müller^j --json` end to end (start-up, login, query, audit): "
        f"median {statistics.median(runs) * 1000:.0f} ms of {len(runs)} runs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
