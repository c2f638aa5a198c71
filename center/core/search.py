"""Finding studies by their accompanying information (issue 6, `center search`).

Criteria: facility, patient ID, patient name, accession, Study Instance UID, study date range,
modality, expiry before a date, legal hold. They combine with AND. One result row per study.

Patient names are matched case-insensitively, with or without accents, as DICOM PS3.4
C.2.2.2.4 wildcard matching does for ``*`` and ``?``: a pattern without a wildcard is a prefix
(``muller`` finds ``Müller^Jürgen``); components are separated by ``^`` as in the PN value
(``müller^j*``). Each ``=`` group of a PN (alphabetic, ideographic, phonetic, PS3.5 6.2.1) is
matched on its own, so ``山田*`` finds ``Yamada^Tarou=山田^太郎``.

Speed on a large catalog comes from indexes (see :data:`SEARCH_MIGRATIONS`): name keys are
kept, folded, in ``patient_name_keys`` by triggers calling :func:`name_keys` (registered on
every catalog connection by :func:`register_functions`), so a name prefix is an index range
scan; patient ID, accession, study date, expiry and series modality have their own indexes.
A pattern that starts with a wildcard cannot use an index and scans the name keys.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from center.core import audit
from center.core.studyref import patient_label, study_label
from common.errors import QueryInvalid
from common.sqlitedb import transaction

NAME_KEYS_FUNCTION = "search_name_keys"  # the name the triggers below call
MAX_LIMIT = 1000
SORT_KEYS = {
    "date": "st.study_date",
    "expiry": "st.expiry",
    "name": "p.patient_name COLLATE NOCASE",
    "patient-id": "p.patient_id",
    "accession": "st.accession",
    "facility": "st.facility_id",
    "received": "st.first_received",
}

# Legal holds are kept by the retention work (table legal_holds, center/core/holds.py): a
# study is held by a study hold or by a hold on its patient at its facility, until released.
_HELD = (
    "EXISTS (SELECT 1 FROM legal_holds h WHERE h.released_at IS NULL "
    "AND h.facility_id = st.facility_id AND ((h.scope = 'study' "
    "AND h.study_instance_uid = st.study_instance_uid) OR (h.scope = 'patient' "
    "AND h.patient_id = p.patient_id)))"
)

# The statements of a trigger are separated by "; " on one line: sqlitedb.migrate splits a
# script at ";\n".
SEARCH_MIGRATIONS = [
    (
        "search-0001-indexes",
        """
        CREATE TABLE patient_name_keys (
            key TEXT NOT NULL,
            patient_pk INTEGER NOT NULL,
            PRIMARY KEY (key, patient_pk)
        ) WITHOUT ROWID;
        CREATE INDEX patient_name_keys_patient ON patient_name_keys(patient_pk);
        CREATE TRIGGER patients_name_keys_insert AFTER INSERT ON patients BEGIN INSERT OR IGNORE INTO patient_name_keys (key, patient_pk) SELECT value, NEW.patient_pk FROM json_each(search_name_keys(NEW.patient_name)); END;
        CREATE TRIGGER patients_name_keys_update AFTER UPDATE OF patient_name ON patients BEGIN DELETE FROM patient_name_keys WHERE patient_pk = OLD.patient_pk; INSERT OR IGNORE INTO patient_name_keys (key, patient_pk) SELECT value, NEW.patient_pk FROM json_each(search_name_keys(NEW.patient_name)); END;
        CREATE TRIGGER patients_name_keys_delete AFTER DELETE ON patients BEGIN DELETE FROM patient_name_keys WHERE patient_pk = OLD.patient_pk; END;
        INSERT OR IGNORE INTO patient_name_keys (key, patient_pk)
            SELECT j.value, p.patient_pk FROM patients p, json_each(search_name_keys(p.patient_name)) j;
        CREATE INDEX patients_patient_id ON patients(patient_id);
        CREATE INDEX series_modality ON series(modality, study_pk);
        CREATE INDEX studies_facility_date ON studies(facility_id, study_date)
        """,  # noqa: E501 - trigger bodies must stay on one line
    ),
]


# -- name folding -----------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Compatibility-normalised, case-folded, with spaces trimmed around ``^`` separators."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    parts = [part.strip() for part in folded.split("^")]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts)


# Latin letters that are not a base letter plus a combining accent, so NFKD keeps them.
_UNDECOMPOSABLE = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ł": "l", "\u0131": "i", "þ": "th"}
)


def _unaccented(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped).translate(_UNDECOMPOSABLE)


def name_keys(patient_name: str | None) -> str:
    """The search keys of a PN value, as a JSON array: each ``=`` group folded, and unaccented."""
    keys: set[str] = set()
    for group in (patient_name or "").split("="):
        folded = _fold(group)
        if folded:
            keys.update((folded, _unaccented(folded)))
    return json.dumps(sorted(keys), ensure_ascii=False)


def register_functions(conn: sqlite3.Connection) -> None:
    """Make :func:`name_keys` callable from SQL (the name-key triggers need it)."""
    conn.create_function(NAME_KEYS_FUNCTION, 1, name_keys, deterministic=True)


def _glob(pattern: str, *, prefix: bool) -> str:
    """A GLOB pattern from a DICOM wildcard pattern (``*``, ``?``); ``[`` is taken literally."""
    escaped = pattern.replace("[", "[[]")
    if prefix and "*" not in pattern and "?" not in pattern:
        escaped += "*"
    return escaped


# -- the query --------------------------------------------------------------------------------


def parse_day(text: str, criterion: str) -> date:
    """A date given as ``YYYY-MM-DD`` or ``YYYYMMDD``; QueryInvalid naming *criterion* if not."""
    for form in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text.strip(), form).date()
        except ValueError:
            continue
    raise QueryInvalid(f"{criterion}: {text!r} is not a date (YYYY-MM-DD or YYYYMMDD)")


def parse_date_range(text: str) -> tuple[date | None, date | None]:
    """``DAY``, ``FROM..TO``, ``FROM..``, ``..TO`` (ISO or DICOM DA dates), or DICOM's own
    range form ``YYYYMMDD-YYYYMMDD`` (PS3.4 C.2.2.2.5); either end may be open."""
    text = text.strip()
    if ".." in text:
        start, _, end = text.partition("..")
    elif len(text) in (9, 17) and "-" in (text[0], text[-1], text[8:9]) and text.count("-") == 1:
        start, _, end = text.partition("-")
    else:
        day = parse_day(text, "--date")
        return day, day
    first = parse_day(start, "--date") if start.strip() else None
    last = parse_day(end, "--date") if end.strip() else None
    if first is None and last is None:
        raise QueryInvalid(f"--date: {text!r} is an open range on both ends")
    return first, last


@dataclass(frozen=True)
class StudyQuery:
    """Search criteria; unset ones do not restrict. All set ones must hold (AND)."""

    facility: str | None = None
    patient_id: str | None = None
    patient_name: str | None = None
    accession: str | None = None
    study_uids: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    modality: str | None = None
    expiring_before: date | None = None
    held: bool | None = None

    def criteria(self) -> dict[str, Any]:
        """The criteria that are set, as JSON-ready values (for output; the audit log keeps
        :meth:`audit_criteria`)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value is None or value == ():
                continue
            out[key] = value.isoformat() if isinstance(value, date) else value
        if "study_uids" in out:
            out["study_uids"] = list(out["study_uids"])
        return out

    def audit_criteria(self) -> dict[str, Any]:
        """The criteria for the audit log: values that identify a patient or a study (patient
        ID, name pattern, accession, Study Instance UIDs) become data-free labels, the others
        stay as given. Labels are stable, so "who searched for patient ID X" stays answerable
        by computing the label of X (:func:`label`)."""
        out = self.criteria()
        for key in ("patient_id", "patient_name", "accession"):
            if key in out:
                out[key] = label(key, str(out[key]))
        if "study_uids" in out:
            out["study_uids"] = [label("study_uid", uid) for uid in out["study_uids"]]
        return out

    def is_empty(self) -> bool:
        return not self.criteria()


def label(kind: str, value: str) -> str:
    """``<kind>:<12 hex>``, a stable data-free label of an identifying value (sha256)."""
    digest = hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()
    return f"{kind}:{digest[:12]}"


def _exact_or_glob(column: str, value: str, params: list[Any]) -> str:
    """``column = ?``, or ``column GLOB ?`` when *value* holds a ``*`` or ``?`` wildcard."""
    if "*" in value or "?" in value:
        params.append(_glob(value, prefix=False))
        return f"{column} GLOB ?"
    params.append(value)
    return f"{column} = ?"


# A modality criterion either drives the search or is checked per study. Alone (or with
# criteria that match a large part of the catalog), the list of the modality's studies from
# the series_modality index drives it. With a criterion that an index narrows (a date range,
# a patient, an accession...), SQLite must walk that index and probe series_modality for each
# study instead: given the list, it looks every listed study up in the table, which from a cold
# cache read most of the studies table (measured on 1,000,000 instances: date range + MR cold
# 248 -> 101 ms, patient ID + MR 60 -> 5 ms; MR alone stays on the list, 251 ms, as per study
# it took 321 ms). `python -m bench.search` prints these queries.
_MODALITY_LIST = "st.study_pk IN (SELECT study_pk FROM series WHERE modality = ?)"
_MODALITY_PER_STUDY = (
    "EXISTS (SELECT 1 FROM series se WHERE se.study_pk = st.study_pk AND se.modality = ?)"
)


def _narrowed(query: StudyQuery) -> bool:
    """Whether a criterion other than the modality has an index that narrows the studies."""
    return any(
        (
            query.facility,
            query.patient_id,
            query.patient_name,
            query.accession,
            query.study_uids,
            query.date_from,
            query.date_to,
        )
    )


def _where(query: StudyQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise QueryInvalid(
            f"the date range starts after it ends ({query.date_from} > {query.date_to})"
        )
    if query.facility:
        clauses.append("st.facility_id = ?")
        params.append(query.facility)
    if query.patient_id:
        clauses.append(_exact_or_glob("p.patient_id", query.patient_id, params))
    if query.patient_name:
        folded = _fold(query.patient_name)
        if not folded:
            raise QueryInvalid("the patient name pattern is empty")
        clauses.append(
            "st.patient_pk IN (SELECT patient_pk FROM patient_name_keys WHERE key GLOB ?)"
        )
        params.append(_glob(folded, prefix=True))
    if query.accession:
        clauses.append(_exact_or_glob("st.accession", query.accession, params))
    if query.study_uids:
        clauses.append("st.study_instance_uid IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(query.study_uids)))
    if query.date_from:
        clauses.append("st.study_date >= ?")
        params.append(query.date_from.strftime("%Y%m%d"))
    if query.date_to:
        clauses.append("st.study_date <= ? AND st.study_date != ''")
        params.append(query.date_to.strftime("%Y%m%d"))
    if query.modality:
        clauses.append(_MODALITY_PER_STUDY if _narrowed(query) else _MODALITY_LIST)
        params.append(query.modality.strip().upper())
    if query.expiring_before:
        clauses.append("st.expiry < ?")
        params.append(query.expiring_before.isoformat())
    if query.held is not None:
        clauses.append(_HELD if query.held else f"NOT {_HELD}")
    return (" AND ".join(clauses) or "1 = 1"), params


def _from(query: StudyQuery, where: str, *, rows: bool) -> str:
    """The FROM clause. Patients are joined for the rows, and for counting only when a
    criterion needs them (every study has its patient, so the count is the same): a cold
    count of many studies then reads no patient pages."""
    needs_patients = rows or query.patient_id is not None or query.held is not None
    join = " JOIN patients p ON p.patient_pk = st.patient_pk" if needs_patients else ""
    return f"FROM studies st{join} WHERE {where}"


def matching_study_pks(conn: sqlite3.Connection, query: StudyQuery) -> list[int]:
    """Every study matching *query*, by primary key, in catalog order (no limit)."""
    where, params = _where(query)
    base = _from(query, where, rows=False)
    rows = conn.execute(f"SELECT st.study_pk {base} ORDER BY st.study_pk", params)
    return [int(r[0]) for r in rows]


def query_plan(conn: sqlite3.Connection, query: StudyQuery) -> list[str]:
    """How SQLite counts *query*'s matches (EXPLAIN QUERY PLAN details, outermost first)."""
    where, params = _where(query)
    rows = conn.execute(
        f"EXPLAIN QUERY PLAN SELECT COUNT(*) {_from(query, where, rows=False)}", params
    )
    return [str(row[3]) for row in rows]


@dataclass(frozen=True)
class StudyHit:
    """One study found: what the search table shows, plus its identifiers."""

    facility_id: str
    patient_id: str
    patient_name: str
    study_date: str
    modalities: str
    accession: str
    instances: int
    bytes: int
    expiry: str
    description: str
    study_instance_uid: str
    held: bool


@dataclass(frozen=True)
class SearchResult:
    criteria: dict[str, Any]
    total: int
    hits: list[StudyHit] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.hits)


def _display_date(value: str) -> str:
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def find_studies(
    conn: sqlite3.Connection,
    query: StudyQuery,
    *,
    sort: str = "date",
    descending: bool = False,
    limit: int = 100,
) -> SearchResult:
    """The studies matching *query*: the first *limit* by *sort*, and how many match in all."""
    if sort not in SORT_KEYS:
        raise QueryInvalid(f"cannot sort by {sort!r}; choose one of {', '.join(SORT_KEYS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryInvalid(f"the limit must be between 1 and {MAX_LIMIT}")
    where, params = _where(query)
    counted = _from(query, where, rows=False)
    total = int(conn.execute(f"SELECT COUNT(*) {counted}", params).fetchone()[0])
    base = _from(query, where, rows=True)
    direction = "DESC" if descending else "ASC"
    rows = conn.execute(
        "SELECT st.study_pk, st.facility_id, p.patient_id, p.patient_name, st.study_date, "
        "st.modalities, st.accession, st.expiry, st.description, st.study_instance_uid, "
        f"{_HELD} AS held {base} "
        f"ORDER BY {SORT_KEYS[sort]} {direction}, st.study_pk {direction} LIMIT ?",
        [*params, limit],
    ).fetchall()
    sizes = {
        int(r[0]): (int(r[1]), int(r[2]))
        for r in conn.execute(
            "SELECT se.study_pk, COUNT(i.instance_pk), COALESCE(SUM(i.size), 0) "
            "FROM series se JOIN instances i ON i.series_pk = se.series_pk "
            "WHERE se.study_pk IN (SELECT value FROM json_each(?)) GROUP BY se.study_pk",
            (json.dumps([int(r["study_pk"]) for r in rows]),),
        )
    }
    hits = [
        StudyHit(
            facility_id=str(r["facility_id"]),
            patient_id=str(r["patient_id"]),
            patient_name=str(r["patient_name"]),
            study_date=_display_date(str(r["study_date"])),
            modalities=str(r["modalities"]),
            accession=str(r["accession"]),
            instances=sizes.get(int(r["study_pk"]), (0, 0))[0],
            bytes=sizes.get(int(r["study_pk"]), (0, 0))[1],
            expiry=str(r["expiry"]),
            description=str(r["description"]),
            study_instance_uid=str(r["study_instance_uid"]),
            held=bool(r["held"]),
        )
        for r in rows
    ]
    return SearchResult(query.criteria(), total, hits)


def search(
    conn: sqlite3.Connection,
    query: StudyQuery,
    *,
    operator: str,
    now: datetime,
    sort: str = "date",
    descending: bool = False,
    limit: int = 100,
) -> SearchResult:
    """:func:`find_studies`, recorded in the audit log (PS3.15 event 110112, Query).

    The entry names the operator, the criteria and the studies shown and their patients, all
    identifying values as data-free labels (the labels of the retention work:
    :func:`center.core.studyref.study_label` / ``patient_label``), so the log answers "who
    looked at this patient's studies" without holding patient data.
    """
    result = find_studies(conn, query, sort=sort, descending=descending, limit=limit)
    with transaction(conn):
        audit.record(
            conn,
            at=now,
            operator=operator,
            action="search",
            event_code=audit.EVENT_QUERY,
            target="studies",
            details={
                "criteria": query.audit_criteria(),
                "matches": result.total,
                "shown": [study_label(h.facility_id, h.study_instance_uid) for h in result.hits],
                "patients": sorted(
                    {patient_label(h.facility_id, h.patient_id) for h in result.hits}
                ),
            },
        )
    return result
