"""`center init --admin`, `center operator ...` and the operator session, through the CLI."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from center.cli.app import app
from center.core import audit
from center.core.archive import open_archive
from tests.conftest import CENTER_PASS, ESCROW_PASS, OPERATOR_PASS, add_test_operator


def _env(archive_root: Path, name: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        "COLUMNS": "140",
        "NO_COLOR": "1",
        "CLINIC_ARCHIVE_KDF_LOG_N": "10",
        "CENTER_ARCHIVE": str(archive_root),
        "CENTER_OPERATOR_PASSPHRASE": OPERATOR_PASS,
        **extra,
    }
    if name:
        env["CENTER_OPERATOR"] = name
    return env


def _run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(app, args, env=env)


@pytest.fixture
def staffed(archive_root: Path) -> Path:
    """An archive with the admin "boss" and a viewer "val"."""
    add_test_operator(archive_root, "boss", "admin")
    add_test_operator(archive_root, "val", "viewer")
    return archive_root


def _last_alert(archive_root: Path) -> audit.AuditEntry:
    with open_archive(archive_root) as archive:
        alerts = [
            e
            for e in audit.entries(archive.conn)
            if e.event_code == audit.EVENT_SECURITY_ALERT and e.outcome == "refused"
        ]
    return alerts[-1]


def test_init_creates_the_first_admin(tmp_path: Path) -> None:
    """`center init --admin NAME` leaves an archive whose admin can list operators."""
    root = tmp_path / "new-archive"
    env = _env(root, "Ada", CENTER_PASSPHRASE=CENTER_PASS, CENTER_ESCROW_PASSPHRASE=ESCROW_PASS)
    created = _run(["init", str(root), "--name", "C", "--admin", "Ada"], env)
    assert created.exit_code == 0, created.output
    listed = _run(["operator", "list", "--json"], env)
    assert listed.exit_code == 0, listed.output
    assert '"role": "admin"' in listed.stdout and '"name": "Ada"' in listed.stdout


def test_init_refuses_admin_passphrase_equal_to_the_center_one(tmp_path: Path) -> None:
    """The admin's passphrase must not be the center passphrase; nothing is created."""
    root = tmp_path / "new-archive"
    env = _env(
        root,
        "Ada",
        CENTER_PASSPHRASE=CENTER_PASS,
        CENTER_ESCROW_PASSPHRASE=ESCROW_PASS,
        CENTER_OPERATOR_PASSPHRASE=CENTER_PASS,
    )
    result = _run(["init", str(root), "--name", "C", "--admin", "Ada"], env)
    assert result.exit_code == 6 and "differ" in result.output
    assert not root.exists()


def test_first_admin_with_the_center_passphrase(archive_root: Path) -> None:
    """An archive without operators accepts its first admin on the center passphrase."""
    env = _env(
        archive_root,
        "boss",
        CENTER_PASSPHRASE=CENTER_PASS,
        CENTER_NEW_OPERATOR_PASSPHRASE=OPERATOR_PASS,
    )
    added = _run(["operator", "add", "boss", "--role", "admin"], env)
    assert added.exit_code == 0, added.output
    assert _run(["operator", "list"], env).exit_code == 0


def test_first_admin_needs_the_right_center_passphrase(archive_root: Path) -> None:
    """The bootstrap route refuses a wrong center passphrase and records a security alert."""
    env = _env(
        archive_root,
        "boss",
        CENTER_PASSPHRASE="wrong",
        CENTER_NEW_OPERATOR_PASSPHRASE=OPERATOR_PASS,
    )
    result = _run(["operator", "add", "boss", "--role", "admin"], env)
    assert result.exit_code == 6
    with open_archive(archive_root) as archive:
        assert archive.conn.execute("SELECT COUNT(*) FROM operators").fetchone()[0] == 0
    assert _last_alert(archive_root).details["reason"] == "wrong-center-passphrase"


def test_admin_adds_an_operator_who_can_then_log_in(staffed: Path) -> None:
    """An operator added by the admin authenticates with the passphrase set for it."""
    env = _env(staffed, "boss", CENTER_NEW_OPERATOR_PASSPHRASE="exporter-pass")
    assert _run(["operator", "add", "eve", "--role", "exporter"], env).exit_code == 0
    as_eve = _env(staffed, "eve", CENTER_OPERATOR_PASSPHRASE="exporter-pass")
    assert _run(["operator", "passwd", "--help"], as_eve).exit_code == 0
    changed = _run(["operator", "passwd"], {**as_eve, "CENTER_NEW_OPERATOR_PASSPHRASE": "p" * 9})
    assert changed.exit_code == 0, changed.output


def test_viewer_cannot_add_operators(staffed: Path) -> None:
    """A viewer running `operator add` is refused with not-authorised, and it is audited."""
    env = _env(staffed, "val", CENTER_NEW_OPERATOR_PASSPHRASE=OPERATOR_PASS)
    result = _run(["operator", "add", "x", "--role", "admin"], env)
    assert result.exit_code == 82 and "not-authorised" in result.output
    assert _last_alert(staffed).action == "operator"


def test_viewer_cannot_reset_another_passphrase(staffed: Path) -> None:
    """Changing someone else's passphrase needs an admin."""
    env = _env(staffed, "val", CENTER_NEW_OPERATOR_PASSPHRASE="x" * 10)
    assert _run(["operator", "passwd", "boss"], env).exit_code == 82


def test_wrong_operator_passphrase_through_the_cli(staffed: Path, tmp_path: Path) -> None:
    """A wrong passphrase gives its own panel and exit code and a security alert."""
    env = _env(staffed, "boss", CENTER_OPERATOR_PASSPHRASE="nope-nope")
    result = _run(["import", str(tmp_path)], env)
    assert result.exit_code == 80 and "operator-authentication-failed" in result.output
    assert _last_alert(staffed).details["reason"] == "wrong-passphrase"


def test_passphrase_from_a_file(staffed: Path, tmp_path: Path) -> None:
    """CENTER_OPERATOR_PASSPHRASE_FILE works as the variable does (one trailing newline)."""
    secret = tmp_path / "op.pass"
    secret.write_text(OPERATOR_PASS + "\n")
    env = _env(staffed, "boss")
    del env["CENTER_OPERATOR_PASSPHRASE"]
    env["CENTER_OPERATOR_PASSPHRASE_FILE"] = str(secret)
    result = _run(["operator", "list"], env)
    assert result.exit_code == 0, result.output


def test_no_passphrase_and_no_terminal_is_a_clear_error(staffed: Path) -> None:
    """Without a variable, a file or a terminal, the command says where to put it."""
    env = _env(staffed, "boss")
    del env["CENTER_OPERATOR_PASSPHRASE"]
    result = _run(["operator", "list"], env)
    assert result.exit_code == 6 and "CENTER_OPERATOR_PASSPHRASE_FILE" in result.output


@pytest.mark.parametrize(
    ("operator", "args", "action"),
    [
        ("val", ["import", "/nonexistent-drive"], "import"),
        ("val", ["courier", "enroll", __file__], "enroll"),
        ("val", ["export", "--patient-id", "X", "--to", "/tmp/x", "--purpose", "p"], "export"),
        ("val", ["request", "add", "clinic-1", "--patient-id", "X", "--purpose", "p"], "request"),
        ("imp", ["search", "--patient-id", "X"], "search"),
        ("exp", ["operator", "list"], "operator"),
    ],
    ids=[
        "viewer-import",
        "viewer-enroll",
        "viewer-export",
        "viewer-request",
        "importer-search",
        "exporter-operators",
    ],
)
def test_commands_refuse_roles_without_the_action(
    staffed: Path, operator: str, args: list[str], action: str
) -> None:
    """Each command refuses a role lacking its action, with exit 82 and a security alert."""
    add_test_operator(staffed, "imp", "importer")
    add_test_operator(staffed, "exp", "exporter")
    result = _run(args, _env(staffed, operator))
    assert result.exit_code == 82, result.output
    alert = _last_alert(staffed)
    assert (alert.operator, alert.action) == (operator, action)


def test_no_option_takes_a_passphrase() -> None:
    """No center command accepts a passphrase on its command line."""

    def options(command: click.Command) -> list[str]:
        found = [o for p in command.params for o in p.opts]
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                found += options(sub)
        return found

    assert [o for o in options(get_command(app)) if "pass" in o.lower()] == []
