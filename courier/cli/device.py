"""`courier init`: create this laptop's device key and trust the center's card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from common.boundary import error_boundary, read_passphrase
from courier.cli.state import PASSPHRASE_PREFIX, state
from courier.core.device import init_device


@error_boundary
def init(
    ctx: typer.Context,
    operator: Annotated[
        str, typer.Option("--operator", help="Your name, as it appears on receipts.")
    ],
    center_card: Annotated[
        Path,
        typer.Option(
            "--center-card",
            exists=True,
            dir_okay=False,
            help="The center card file the center gave you.",
        ),
    ],
) -> None:
    """Set up this laptop as a courier device (keys, operator, center card)."""
    from rich.console import Console

    st = state(ctx)
    passphrase = read_passphrase(
        st.env.environ,
        PASSPHRASE_PREFIX,
        confirm=True,
        prompt="New passphrase for this device's key",
    )
    card = init_device(
        st.home,
        operator=operator,
        center_card=center_card.read_bytes(),
        passphrase=passphrase,
        env=st.env,
    )
    console = Console()
    console.print(f"Courier device [bold]{card.device_id}[/bold] created in {st.home.root}")
    console.print(f"Device fingerprint: [bold]{card.fingerprint}[/bold]")
    console.print(
        f"Give [bold]{st.home.device_card}[/bold] to the center to be enrolled, "
        "and read them the fingerprint above."
    )
