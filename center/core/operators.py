"""Center operators, their roles, and who may do what (issue 6).

Every center command that reads or changes patient data runs on behalf of an *operator*
authenticated by a passphrase (an scrypt hash in the catalog, see
:func:`common.crypto.hash_passphrase`) and whose *role* allows the command's *action*:

============  ==================================================================
role          actions
============  ==================================================================
viewer        search
importer      import
exporter      search, export, request
admin         everything, including enrol, revoke, retention, holds and purge
============  ==================================================================

Enrolling or revoking a courier device changes who the center trusts, so it is a security
configuration change and belongs to ``admin`` only. Every role may change its own passphrase
(action ``passwd``). An action name this module does not know is allowed to ``admin`` only, so
a new command fails closed.

A refused attempt (unknown name, wrong passphrase, disabled operator, role without the action)
is recorded in the audit log as a security alert (DICOM PS3.15 event 110113) before the error
is raised, with the reason in its details. Changes to operators are audited the same way
(event 110113 with type 110137 "User Security Attributes Changed").
"""

from __future__ import annotations

import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

from center.core import audit
from common.crypto import hash_passphrase, verify_passphrase
from common.errors import (
    ArchiveError,
    AuthenticationFailed,
    ConfigError,
    LastAdmin,
    NotAuthorised,
    OperatorDisabled,
    OperatorExists,
    OperatorUnknown,
    PassphraseError,
)
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.archive import Archive

ROLES = ("viewer", "importer", "exporter", "admin")
ADMIN = "admin"
# Action names of contract C6, plus this module's own.
ACTIONS = (
    "import",
    "enroll",
    "revoke",
    "audit",
    "check",
    "receipt",
    "retention",
    "facility",
    "expiry",
    "purge",
    "hold",
    "search",
    "export",
    "request",
    "operator",
    "passwd",
)
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"search", "passwd"}),
    "importer": frozenset({"import", "passwd"}),
    "exporter": frozenset({"search", "export", "request", "passwd"}),
}
MIN_PASSPHRASE_LENGTH = 8
MAX_NAME_LENGTH = 64
# PS3.15 A.5.3 / CID 401 event type codes carried in the details of our security alerts.
LOGIN = "110122"
RESTRICTED_FUNCTION = "110132"
USER_ATTRIBUTES_CHANGED = "110137"

OPERATOR_MIGRATIONS = [
    (
        "operators-0001-initial",
        """
        CREATE TABLE operators (
            name TEXT PRIMARY KEY COLLATE NOCASE,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'importer', 'exporter', 'admin')),
            passphrase_hash TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            passphrase_changed_at TEXT NOT NULL,
            disabled_at TEXT,
            disabled_by TEXT
        )
        """,
    ),
]


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    status: str
    created_at: str
    created_by: str
    passphrase_changed_at: str
    disabled_at: str | None


def allows(role: str, action: str) -> bool:
    """True when *role* may perform *action* (admin may do everything)."""
    return role == ADMIN or action in ROLE_ACTIONS.get(role, frozenset())


def check_name(name: str) -> str:
    """The operator name, stripped; ConfigError when empty, too long or holding control chars."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ConfigError(f"an operator name must have 1 to {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ConfigError("an operator name cannot hold control characters")
    return name


def check_new_passphrase(passphrase: str, **others: str) -> str:
    """Refuse passphrases shorter than 8 characters, or equal to one of *others* (by label)."""
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise PassphraseError(
            f"an operator passphrase needs at least {MIN_PASSPHRASE_LENGTH} characters",
            hint="Choose a longer one.",
        )
    for label, value in others.items():
        if passphrase == value:
            raise PassphraseError(
                f"an operator passphrase must differ from the {label.replace('_', ' ')}",
                hint="Choose a personal passphrase; the center's passphrases protect its keys.",
            )
    return passphrase


def _row(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM operators WHERE name = ?", (name.strip(),)
    ).fetchone()
    return row


def _operator(row: sqlite3.Row) -> Operator:
    return Operator(
        name=str(row["name"]),
        role=str(row["role"]),
        status=str(row["status"]),
        created_at=str(row["created_at"]),
        created_by=str(row["created_by"]),
        passphrase_changed_at=str(row["passphrase_changed_at"]),
        disabled_at=row["disabled_at"],
    )


def list_operators(conn: sqlite3.Connection) -> list[Operator]:
    return [_operator(r) for r in conn.execute("SELECT * FROM operators ORDER BY name")]


def active_admins(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM operators WHERE role = 'admin' AND status = 'active'"
    ).fetchone()
    return int(row[0])


def _refuse(
    conn: sqlite3.Connection,
    error: ArchiveError,
    *,
    name: str,
    action: str,
    reason: str,
    now: datetime,
    event_type: str = LOGIN,
    role: str = "",
) -> NoReturn:
    """Record the refusal as a security alert in its own transaction, then raise *error*."""
    with transaction(conn):
        audit.record(
            conn,
            at=now,
            operator=name,
            action=action,
            event_code=audit.EVENT_SECURITY_ALERT,
            target=f"operator:{name}",
            outcome="refused",
            details={"event_type": event_type, "reason": reason, "role": role},
        )
    raise error


def _matches(row: sqlite3.Row, passphrase: str) -> bool:
    try:
        return verify_passphrase(passphrase, str(row["passphrase_hash"]))
    except ValueError as exc:
        raise ConfigError(
            f"the stored passphrase hash of operator {row['name']!r} is damaged",
            hint="An administrator can set a new one with `center operator passwd NAME`.",
        ) from exc


def authorise(
    conn: sqlite3.Connection, name: str, passphrase: str, action: str, *, now: datetime
) -> Operator:
    """The operator *name*, authenticated by *passphrase* and allowed to perform *action*.

    Raises AuthenticationFailed (unknown name or wrong passphrase: the message does not say
    which), OperatorDisabled or NotAuthorised, after recording a security alert.
    """
    name = name.strip()
    row = _row(conn, name)
    if row is None or not _matches(row, passphrase):
        hint = None
        if conn.execute("SELECT COUNT(*) FROM operators").fetchone()[0] == 0:
            hint = (
                "This archive has no operators yet: create the first administrator with "
                "`center operator add NAME --role admin` (it asks for the center passphrase)."
            )
        _refuse(
            conn,
            AuthenticationFailed(
                f"operator {name!r} could not be authenticated: unknown name or wrong passphrase",
                hint=hint,
            ),
            name=name,
            action=action,
            reason="unknown-operator" if row is None else "wrong-passphrase",
            now=now,
        )
    operator = _operator(row)
    if operator.status != "active":
        _refuse(
            conn,
            OperatorDisabled(f"operator {operator.name!r} is disabled"),
            name=operator.name,
            action=action,
            reason="operator-disabled",
            now=now,
            role=operator.role,
        )
    if not allows(operator.role, action):
        _refuse(
            conn,
            NotAuthorised(
                f"operator {operator.name!r} has the role {operator.role!r}, which does not "
                f"allow the action {action!r}"
            ),
            name=operator.name,
            action=action,
            reason="role-lacks-action",
            now=now,
            event_type=RESTRICTED_FUNCTION,
            role=operator.role,
        )
    return operator


def prove_center_key(archive: Archive, passphrase: str, *, name: str, now: datetime) -> None:
    """Check the center passphrase offered on the route for a first administrator.

    A wrong one is refused (PassphraseError) and recorded as a security alert, as a wrong
    operator passphrase is.
    """
    try:
        archive.unlock(passphrase)
    except PassphraseError:
        _refuse(
            archive.conn,
            PassphraseError("the center passphrase is wrong: no administrator was created"),
            name=name or "(center key)",
            action="operator",
            reason="wrong-center-passphrase",
            now=now,
        )


def _record_change(
    conn: sqlite3.Connection, *, by: str, target: str, change: str, now: datetime, **details: str
) -> None:
    audit.record(
        conn,
        at=now,
        operator=by,
        action="operator",
        event_code=audit.EVENT_SECURITY_ALERT,
        target=f"operator:{target}",
        details={"event_type": USER_ATTRIBUTES_CHANGED, "change": change, **details},
    )


def add_operator(
    conn: sqlite3.Connection,
    name: str,
    *,
    role: str,
    passphrase: str,
    by: str,
    now: datetime,
    log_n: int,
    authorised_by: str = "admin",
) -> Operator:
    """Create an active operator. *authorised_by* says how the caller was allowed to:

    ``admin`` (an authenticated administrator), or ``init`` / ``center-key`` (the caller proved
    possession of the center passphrase). The latter two may only create an administrator, and
    only while no active administrator exists: this is how the first one is made, and the way
    back in when every administrator is gone.
    """
    name = check_name(name)
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}", hint=f"Choose one of {', '.join(ROLES)}.")
    check_new_passphrase(passphrase)
    encoded = hash_passphrase(passphrase, log_n=log_n)
    at = now.isoformat(timespec="seconds")
    with transaction(conn):
        if authorised_by != ADMIN:
            if active_admins(conn) > 0:
                raise NotAuthorised(
                    "an active administrator exists: only an administrator can add operators",
                    hint="Run `center operator add` as an administrator (--operator NAME).",
                )
            if role != ADMIN:
                raise ConfigError(
                    "the archive has no administrator yet: the first operator must be an admin",
                    hint="Run `center operator add NAME --role admin`.",
                )
        if _row(conn, name) is not None:
            raise OperatorExists(f"an operator named {name!r} already exists")
        conn.execute(
            "INSERT INTO operators (name, role, passphrase_hash, status, created_at, created_by, "
            "passphrase_changed_at) VALUES (?, ?, ?, 'active', ?, ?, ?)",
            (name, role, encoded, at, by, at),
        )
        _record_change(
            conn,
            by=by,
            target=name,
            change="added",
            now=now,
            role=role,
            authorised_by=authorised_by,
        )
    return _require(conn, name)


def _require(conn: sqlite3.Connection, name: str) -> Operator:
    row = _row(conn, name)
    if row is None:
        raise OperatorUnknown(f"there is no operator named {name.strip()!r}")
    return _operator(row)


def disable_operator(conn: sqlite3.Connection, name: str, *, by: str, now: datetime) -> Operator:
    """Disable *name* (kept for the audit trail); the last active admin cannot be disabled."""
    with transaction(conn):
        target = _require(conn, name)
        if target.status == "disabled":
            return target
        if target.role == ADMIN and active_admins(conn) <= 1:
            raise LastAdmin(f"{target.name!r} is the last active administrator")
        conn.execute(
            "UPDATE operators SET status = 'disabled', disabled_at = ?, disabled_by = ? "
            "WHERE name = ?",
            (now.isoformat(timespec="seconds"), by, target.name),
        )
        _record_change(conn, by=by, target=target.name, change="disabled", now=now)
    return _require(conn, name)


def set_passphrase(
    conn: sqlite3.Connection, name: str, passphrase: str, *, by: str, now: datetime, log_n: int
) -> Operator:
    """Replace *name*'s passphrase (by the operator or an admin; the caller checked which)."""
    check_new_passphrase(passphrase)
    encoded = hash_passphrase(passphrase, log_n=log_n)
    with transaction(conn):
        target = _require(conn, name)
        conn.execute(
            "UPDATE operators SET passphrase_hash = ?, passphrase_changed_at = ? WHERE name = ?",
            (encoded, now.isoformat(timespec="seconds"), target.name),
        )
        _record_change(conn, by=by, target=target.name, change="passphrase", now=now)
    return _require(conn, name)
