"""SQLite connections with the durability settings of DESIGN.md s6, and schema migrations.

WAL journal, ``synchronous=FULL`` and explicit ``BEGIN IMMEDIATE`` transactions: Python's
``with conn:`` does not begin a transaction in autocommit mode, so :func:`transaction` does.
Migrations are an ordered list of SQL scripts per database; ``PRAGMA user_version`` records how
many have run, and each runs in its own transaction.
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


def migrate(conn: sqlite3.Connection, steps: Sequence[str], *, name: str) -> int:
    """Run the migrations of *steps* not yet applied; return the schema version reached."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(steps):
        raise ConfigError(
            f"the {name} database has schema version {version}, newer than this software "
            f"knows ({len(steps)})",
            hint="Upgrade this software before using this database.",
        )
    for number, script in enumerate(steps[version:], start=version + 1):
        with transaction(conn):
            for statement in script.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
    return len(steps)
