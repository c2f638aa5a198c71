"""`center operator ...`: the people allowed to use the archive, and their roles."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from center.cli.session import (
    CENTER_KEY,
    management_session,
    new_operator_passphrase,
    operator_session,
)
from center.cli.state import state
from common.boundary import error_boundary

app = typer.Typer(
    help="Add, list and disable operators and change passphrases (administrators).",
    no_args_is_help=True,
)


class Role(StrEnum):
    viewer = "viewer"
    importer = "importer"
    exporter = "exporter"
    admin = "admin"


JsonOutput = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command("add")
@error_boundary
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new operator's name (unique, any case).")],
    role: Annotated[Role, typer.Option("--role", help="What the operator may do.")],
) -> None:
    """Add an operator; the passphrase comes from CENTER_NEW_OPERATOR_PASSPHRASE(_FILE) or a prompt.

    Needs an administrator. While the archive has no active administrator, the center
    passphrase (CENTER_PASSPHRASE) allows creating one.
    """
    # imported when the command runs: `center` imports every command module to start one
    from center.core.operators import add_operator

    with management_session(ctx) as session:
        bootstrap = session.role == CENTER_KEY
        added = add_operator(
            session.archive.conn,
            name,
            role=role.value,
            passphrase=new_operator_passphrase(session.state, name),
            by=session.operator or name.strip(),
            now=session.state.env.now(),
            log_n=session.state.env.kdf_log_n,
            authorised_by=CENTER_KEY if bootstrap else "admin",
        )
    Console().print(f"Operator [bold]{added.name}[/bold] added with the role {added.role}.")


@app.command("list")
@error_boundary
def list_(ctx: typer.Context, as_json: JsonOutput = False) -> None:
    """List operators with their role and status (administrators)."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.operators import list_operators

    with operator_session(ctx, "operator") as session:
        operators = list_operators(session.archive.conn)
    if as_json:
        typer.echo(json.dumps([asdict(o) for o in operators], indent=2))
        return
    table = Table("Operator", "Role", "Status", "Created", "By", "Passphrase set")
    for o in operators:
        table.add_row(o.name, o.role, o.status, o.created_at, o.created_by, o.passphrase_changed_at)
    Console().print(table)


@app.command("disable")
@error_boundary
def disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The operator to disable.")],
) -> None:
    """Disable an operator (kept for the audit trail); the last administrator cannot be."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.operators import disable_operator

    with operator_session(ctx, "operator") as session:
        done = disable_operator(
            session.archive.conn, name, by=session.operator, now=session.state.env.now()
        )
    Console().print(f"Operator [bold]{done.name}[/bold] is disabled.")


@app.command("passwd")
@error_boundary
def passwd(
    ctx: typer.Context,
    name: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional here
        typer.Argument(help="Whose passphrase to set (default: yours; others' need an admin)."),
    ] = None,
) -> None:
    """Change a passphrase (from CENTER_NEW_OPERATOR_PASSPHRASE(_FILE) or a prompt)."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.operators import set_passphrase

    me = state(ctx).require_operator()
    target = (name or me).strip()
    action = "passwd" if target.casefold() == me.casefold() else "operator"
    with operator_session(ctx, action) as session:
        done = set_passphrase(
            session.archive.conn,
            target,
            new_operator_passphrase(session.state, target),
            by=session.operator,
            now=session.state.env.now(),
            log_n=session.state.env.kdf_log_n,
        )
    Console().print(f"Passphrase of [bold]{done.name}[/bold] changed.")
