"""`center audit show|verify`: read the audit log, and prove it was not tampered with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from center.cli.options import JsonOutput
from center.cli.session import operator_session
from common.boundary import error_boundary
from common.errors import AuditChainBroken, ConfigError

app = typer.Typer(help="Show and verify the tamper-evident audit log.", no_args_is_help=True)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"--since {text!r} is not a date or time",
            hint="Give a date (2026-11-01) or a time (2026-11-01T08:00, UTC unless an offset).",
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("show")
@error_boundary
def show(
    ctx: typer.Context,
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--since", help="Only entries from this date or time on (UTC)."),
    ] = None,
    action: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--action", help="Only entries of this action (import, enroll, check...)."),
    ] = None,
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--limit", min=1, help="Only the latest N matching entries."),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Show audit entries: who did what, to what, with what outcome."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.audit import read_log

    with operator_session(ctx, "audit") as session:
        found = read_log(
            session.archive.conn,
            operator=session.operator,
            now=session.state.env.now(),
            since=_since(since),
            action=action,
            limit=limit,
        )
    if as_json:
        typer.echo(json.dumps([e.__dict__ for e in found], indent=2, ensure_ascii=False))
        return
    table = Table("Seq", "At", "Operator", "Action", "Event", "Target", "Outcome", "Details")
    for e in found:
        details = json.dumps(e.details, sort_keys=True, ensure_ascii=False)
        table.add_row(
            str(e.seq), e.at, e.operator, e.action, e.event_code, e.target, e.outcome, details
        )
    Console().print(table)


@app.command("verify")
@error_boundary
def verify(ctx: typer.Context, as_json: JsonOutput = False) -> None:
    """Recompute the hash chain and check every signed checkpoint; name what was altered."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.auditverify import verify_log
    from center.core.storage_receipts import issued_checkpoints

    with operator_session(ctx, "audit") as session:
        archive = session.archive
        report = verify_log(
            archive.conn,
            archive.card.signing_public,
            operator=session.operator,
            now=session.state.env.now(),
            extra_checkpoints=issued_checkpoints(archive.conn),
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        console = Console()
        console.print(
            f"{report.entries} entries, {report.checkpoints} signed checkpoint(s); head "
            f"{report.head_seq} {report.head_hash}"
        )
        for p in report.problems:
            console.print(f"[red]entry {p.seq}: {p.kind}[/red]: {p.detail}")
    if not report.ok:
        kinds = sorted({p.kind for p in report.problems})
        raise AuditChainBroken(
            f"the audit log was altered: {len(report.problems)} problem(s) ({', '.join(kinds)})"
        )
