"""Operators: passphrase hashes, authentication, roles, and the audit of refusals."""

from __future__ import annotations

import pytest

from center.core import audit
from center.core.archive import Archive
from center.core.operators import (
    ACTIONS,
    ROLES,
    add_operator,
    allows,
    authorise,
    disable_operator,
    list_operators,
    set_passphrase,
)
from common.crypto import hash_passphrase, passphrase_hash_cost, verify_passphrase
from common.errors import (
    AuthenticationFailed,
    ConfigError,
    LastAdmin,
    NotAuthorised,
    OperatorDisabled,
    OperatorExists,
    PassphraseError,
)
from tests.conftest import NOW

PASS = "operator-pass-1"


def _add(archive: Archive, name: str, role: str, by: str = "boot") -> None:
    add_operator(
        archive.conn,
        name,
        role=role,
        passphrase=PASS,
        by=by,
        now=NOW,
        log_n=10,
        authorised_by="admin" if role != "admin" or by != "boot" else "init",
    )


@pytest.fixture
def staffed(archive: Archive) -> Archive:
    """An archive with one operator of each role, named after the role."""
    _add(archive, "admin", "admin")
    for role in ("viewer", "importer", "exporter"):
        _add(archive, role, role, by="admin")
    return archive


def _alerts(archive: Archive) -> list[audit.AuditEntry]:
    return [
        e
        for e in audit.entries(archive.conn)
        if e.event_code == audit.EVENT_SECURITY_ALERT and e.outcome == "refused"
    ]


def test_passphrase_hash_records_its_cost() -> None:
    """A hash made at one cost verifies by the cost it records, not the current default."""
    encoded = hash_passphrase("correct horse", log_n=11)
    assert passphrase_hash_cost(encoded) == (11, 8, 1)
    assert verify_passphrase("correct horse", encoded)
    assert not verify_passphrase("correct hors", encoded)


def test_malformed_passphrase_hash_is_refused() -> None:
    """A damaged stored hash raises ValueError instead of comparing as a mismatch."""
    with pytest.raises(ValueError):
        verify_passphrase("x", "scrypt$ln=99,r=8,p=1$AAAA$BBBB")


def test_operator_passphrase_is_stored_hashed(staffed: Archive) -> None:
    """The catalog holds an scrypt hash, never the passphrase."""
    stored = staffed.conn.execute(
        "SELECT passphrase_hash FROM operators WHERE name = 'viewer'"
    ).fetchone()[0]
    assert PASS not in stored and stored.startswith("scrypt$ln=10,")


def test_right_passphrase_and_role_is_allowed(staffed: Archive) -> None:
    """An exporter with the right passphrase may export."""
    assert authorise(staffed.conn, "exporter", PASS, "export", now=NOW).role == "exporter"


def test_names_match_regardless_of_case(staffed: Archive) -> None:
    """Logging in as EXPORTER finds the operator exporter, under its stored name."""
    assert authorise(staffed.conn, "EXPORTER", PASS, "search", now=NOW).name == "exporter"


def test_wrong_passphrase_is_refused_and_audited(staffed: Archive) -> None:
    """A wrong passphrase is refused and leaves a security alert naming the reason."""
    with pytest.raises(AuthenticationFailed):
        authorise(staffed.conn, "viewer", "not-the-pass", "search", now=NOW)
    [alert] = _alerts(staffed)
    assert (alert.operator, alert.action) == ("viewer", "search")
    assert alert.details["reason"] == "wrong-passphrase"


def test_unknown_operator_is_refused_like_a_wrong_passphrase(staffed: Archive) -> None:
    """An unknown name gets the same error as a wrong passphrase; the audit tells them apart."""
    with pytest.raises(AuthenticationFailed) as caught:
        authorise(staffed.conn, "mallory", PASS, "search", now=NOW)
    assert "unknown name or wrong passphrase" in caught.value.message
    assert _alerts(staffed)[0].details["reason"] == "unknown-operator"


def test_archive_without_operators_says_how_to_start(archive: Archive) -> None:
    """With no operator at all, the refusal explains how to create the first administrator."""
    with pytest.raises(AuthenticationFailed) as caught:
        authorise(archive.conn, "anyone", PASS, "search", now=NOW)
    assert "center operator add" in caught.value.hint


def test_disabled_operator_is_refused_and_audited(staffed: Archive) -> None:
    """A disabled operator with the right passphrase is refused with its own error."""
    disable_operator(staffed.conn, "viewer", by="admin", now=NOW)
    with pytest.raises(OperatorDisabled):
        authorise(staffed.conn, "viewer", PASS, "search", now=NOW)
    assert _alerts(staffed)[0].details["reason"] == "operator-disabled"


LACKING = [(role, action) for role in ROLES for action in ACTIONS if not allows(role, action)]


@pytest.mark.parametrize(("role", "action"), LACKING, ids=[f"{r}-{a}" for r, a in LACKING])
def test_role_is_refused_each_action_it_lacks(staffed: Archive, role: str, action: str) -> None:
    """Each role is refused each action it lacks, and the refusal is a security alert."""
    with pytest.raises(NotAuthorised):
        authorise(staffed.conn, role, PASS, action, now=NOW)
    [alert] = _alerts(staffed)
    assert (alert.operator, alert.action, alert.details["reason"]) == (
        role,
        action,
        "role-lacks-action",
    )


def test_role_table_matches_the_issue() -> None:
    """viewer: search; importer: import; exporter: search, export, request; admin: all."""
    granted = {role: {a for a in ACTIONS if allows(role, a)} for role in ROLES}
    assert granted["viewer"] == {"search", "passwd"}
    assert granted["importer"] == {"import", "passwd"}
    assert granted["exporter"] == {"search", "export", "request", "passwd"}
    assert granted["admin"] == set(ACTIONS)


def test_unknown_action_is_for_admins_only() -> None:
    """An action name the table does not know fails closed."""
    assert allows("admin", "new-thing") and not allows("exporter", "new-thing")


def test_duplicate_name_in_another_case_is_refused(staffed: Archive) -> None:
    """Operator names are unique regardless of letter case."""
    with pytest.raises(OperatorExists):
        _add(staffed, "Viewer", "viewer", by="admin")


def test_short_passphrase_is_refused(archive: Archive) -> None:
    """A passphrase under eight characters is refused before anything is stored."""
    with pytest.raises(PassphraseError):
        add_operator(
            archive.conn,
            "a",
            role="admin",
            passphrase="short",
            by="a",
            now=NOW,
            log_n=10,
            authorised_by="init",
        )
    assert list_operators(archive.conn) == []


def test_center_key_route_only_without_an_admin(staffed: Archive) -> None:
    """The center-passphrase route cannot add an operator once an active admin exists."""
    with pytest.raises(NotAuthorised):
        add_operator(
            staffed.conn,
            "x",
            role="admin",
            passphrase=PASS,
            by="x",
            now=NOW,
            log_n=10,
            authorised_by="center-key",
        )


def test_center_key_route_creates_only_admins(archive: Archive) -> None:
    """Without any admin, the first operator made with the center key must be an admin."""
    with pytest.raises(ConfigError):
        add_operator(
            archive.conn,
            "x",
            role="viewer",
            passphrase=PASS,
            by="x",
            now=NOW,
            log_n=10,
            authorised_by="center-key",
        )


def test_last_admin_cannot_be_disabled(staffed: Archive) -> None:
    """Disabling the only active admin is refused, so the archive stays administrable."""
    with pytest.raises(LastAdmin):
        disable_operator(staffed.conn, "admin", by="admin", now=NOW)


def test_new_passphrase_replaces_the_old(staffed: Archive) -> None:
    """After passwd the old passphrase fails and the new one works."""
    set_passphrase(staffed.conn, "viewer", "brand-new-pass", by="viewer", now=NOW, log_n=10)
    with pytest.raises(AuthenticationFailed):
        authorise(staffed.conn, "viewer", PASS, "search", now=NOW)
    assert authorise(staffed.conn, "viewer", "brand-new-pass", "search", now=NOW)


def test_operator_changes_are_audited(staffed: Archive) -> None:
    """Adding and disabling operators leave audit entries naming who did it."""
    disable_operator(staffed.conn, "importer", by="admin", now=NOW)
    changes = [
        (e.operator, e.target, e.details["change"])
        for e in audit.entries(staffed.conn, action="operator")
    ]
    assert ("admin", "operator:viewer", "added") in changes
    assert ("admin", "operator:importer", "disabled") in changes
