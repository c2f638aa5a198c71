"""`center receipt show|verify`: read a receipt, and prove what it says."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from center.cli.options import JsonOutput
from center.cli.session import operator_session
from common.boundary import error_boundary
from common.errors import ReceiptInvalid

app = typer.Typer(help="Show and verify storage and reception receipts.", no_args_is_help=True)

Reference = Annotated[
    str,
    typer.Argument(help="A receipt id (storage-<bundle-id>) or the path of a receipt's .json."),
]


@app.command("show")
@error_boundary
def show(ctx: typer.Context, receipt: Reference, as_json: JsonOutput = False) -> None:
    """Show a receipt: its facility, bundle, studies and expiry dates."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.receiptcheck import show_receipt

    with operator_session(ctx, "receipt") as session:
        path, doc = show_receipt(
            session.archive, receipt, operator=session.operator, now=session.state.env.now()
        )
    if as_json:
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    _render(path.name, doc)


@app.command("verify")
@error_boundary
def verify(ctx: typer.Context, receipt: Reference, as_json: JsonOutput = False) -> None:
    """Check a receipt's signature, audit checkpoint and that what it lists is still stored."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.receiptcheck import verify_receipt_file

    with operator_session(ctx, "receipt") as session:
        result = verify_receipt_file(
            session.archive, receipt, operator=session.operator, now=session.state.env.now()
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        table = Table("Check", "Result", "Detail", title=f"Receipt {result.path.name}")
        for check in result.checks:
            table.add_row(check.name, "ok" if check.ok else "[red]FAILED[/]", check.detail)
        Console().print(table)
    if not result.ok:
        failed = ", ".join(c.name for c in result.checks if not c.ok)
        raise ReceiptInvalid(f"receipt {result.path.name} failed: {failed}")


def _render(name: str, doc: dict[str, Any]) -> None:
    console = Console()
    issuer = doc.get("issuer", {})
    console.print(f"[bold]{doc.get('kind')}[/bold] {doc.get('receipt_id')} ({name})")
    console.print(f"Facility {doc.get('facility_id')}, bundle {doc.get('bundle_id', '-')}")
    console.print(
        f"Issued {doc.get('issued')} by {issuer.get('name')} ({issuer.get('fingerprint')})"
    )
    table = Table("Accession", "Study date", "Modality", "Instances", "Bytes", "Kept until")
    for study in doc.get("studies", []):
        count = study.get("instance_count", study.get("instances"))
        table.add_row(
            str(study.get("accession", "")),
            str(study.get("study_date", "")),
            str(study.get("modality", "")),
            str(len(count) if isinstance(count, list) else count),
            f"{study.get('bytes', 0):,}",
            str(study.get("expiry", "")),
        )
    console.print(table)
    for item in doc.get("not_stored", []) + doc.get("skipped", []):
        console.print(f"[yellow]not included[/]: {item.get('item')}: {item.get('reason')}")
    checkpoint = doc.get("audit_checkpoint")
    if isinstance(checkpoint, dict):
        console.print(f"Audit checkpoint: entry {checkpoint.get('seq')}, {checkpoint.get('hash')}")
