"""SQLite connections with the durability settings of DESIGN.md s6, and schema migrations.

WAL journal, ``synchronous=FULL`` and explicit ``BEGIN IMMEDIATE`` transactions: Python's
``with conn:`` does not begin a transaction in autocommit mode, so :func:`transaction` does.
Migrations are named SQL scripts, applied in list order, each in its own transaction; the
``_migrations`` table records which have run.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from common.errors import ConfigError


def connect(path: Path) -> sqlite3.Connection:
    """Open *path* in autocommit mode with WAL and full synchronous writes."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, steps: Sequence[tuple[str, str]], *, name: str) -> int:
    """Apply the named migrations of *steps* not yet applied, in order; return how many ran.

    Each step is ``(migration name, SQL script)``; applied names are recorded in
    ``_migrations``. Names let feature modules own their migrations (one list each,
    concatenated by the database's module) without renumbering anyone else's. A database that
    has applied a migration this software does not know is refused: it was written by a newer
    version.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, position INTEGER NOT NULL)"
    )
    applied = {str(r[0]) for r in conn.execute("SELECT name FROM _migrations")}
    known = [step_name for step_name, _ in steps]
    if len(known) != len(set(known)):
        raise ValueError(f"duplicate migration names in the {name} database's list")
    unknown = applied - set(known)
    if unknown:
        raise ConfigError(
            f"the {name} database has migrations this software does not know "
            f"({', '.join(sorted(unknown))})",
            hint="Upgrade this software before using this database.",
        )
    ran = 0
    for position, (step_name, script) in enumerate(steps):
        if step_name in applied:
            continue
        with transaction(conn):
            for statement in script.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO _migrations VALUES (?, ?)", (step_name, position))
        ran += 1
    return ran
