"""`center init`: create an archive and the center's keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from center.cli.state import PASSPHRASE_PREFIX, state
from common.boundary import error_boundary, read_passphrase


@error_boundary
def init(
    ctx: typer.Context,
    archive: Annotated[Path, typer.Argument(help="Folder for the new archive.")],
    name: Annotated[str, typer.Option("--name", help="The center's name, shown on receipts.")],
    admin: Annotated[
        str,
        typer.Option(
            "--admin",
            help="Name of the first administrator; the passphrase comes from "
            "CENTER_OPERATOR_PASSPHRASE(_FILE) or a prompt.",
        ),
    ],
) -> None:
    """Create an archive: catalog, object store, center keys, center card, first administrator."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.initialise import create_archive

    st = state(ctx)
    passphrase = read_passphrase(
        st.env.environ, PASSPHRASE_PREFIX, confirm=True, prompt="New center passphrase"
    )
    escrow = read_passphrase(
        st.env.environ,
        "CENTER_ESCROW",
        confirm=True,
        prompt="New escrow passphrase (kept offline with the escrow file)",
    )
    admin_passphrase = read_passphrase(
        st.env.environ, "CENTER_OPERATOR", confirm=True, prompt=f"New passphrase for {admin}"
    )
    result = create_archive(
        archive,
        center_name=name,
        passphrase=passphrase,
        escrow_passphrase=escrow,
        admin=admin,
        admin_passphrase=admin_passphrase,
        env=st.env,
    )
    console = Console()
    console.print(f"Archive created in [bold]{archive}[/bold].")
    console.print(f"Center fingerprint: [bold]{result.card.fingerprint}[/bold]")
    console.print(f"Center card for couriers: {result.card_path}")
    console.print(
        f"Administrator: [bold]{admin.strip()}[/bold] (add others: `center operator add`)"
    )
    console.print(
        f"[bold red]Move {result.escrow_path} offline now[/bold red] (a safe, not this host): "
        "it recovers every bundle if the center key is lost. `age -d` opens it with the escrow "
        "passphrase."
    )
