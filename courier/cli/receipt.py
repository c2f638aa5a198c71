"""`courier receipt verify`: check a receipt's signature and say who signed it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from common.boundary import error_boundary
from common.errors import NotInitialised, ReceiptInvalid
from courier.cli.options import JsonOutput
from courier.cli.state import state
from courier.core.device import load_device

app = typer.Typer(help="Check receipts.", no_args_is_help=True)


@app.command("verify")
@error_boundary
def verify(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The receipt: its .json, .json.sig or .html file.")],
    as_json: JsonOutput = False,
) -> None:
    """Check that a receipt is exactly what its signer signed, and who the signer is."""
    # imported when the command runs: `courier` imports every command module to start one
    from rich.console import Console

    from courier.core.receiptcheck import CENTER, THIS_DEVICE, check_receipt

    try:
        device = load_device(state(ctx).home)
    except NotInitialised:
        device = None
    check = check_receipt(file, device)
    if as_json:
        typer.echo(json.dumps(check.to_dict(), indent=2))
    elif check.valid:
        console = Console()
        console.print(
            f"[green]valid[/green]: {check.kind} {check.receipt_id}, issued by {check.issuer}"
        )
        console.print(f"signing key fingerprint: [bold]{check.fingerprint}[/bold]")
        if check.signer in (CENTER, THIS_DEVICE):
            console.print(f"The key is {check.signer}.")
        else:
            console.print(
                "This laptop does not know that key: compare the fingerprint with the one the "
                "signer gave you (the center's, or the courier's read out at the first visit)."
            )
    if not check.valid:
        raise ReceiptInvalid(f"{check.path}: {check.problem}")
