"""Rendering shared by courier commands: warnings, deliveries, receipts, sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from courier.core.sizes import format_bytes

# rich and the core modules are imported when used: `courier` imports every command module to
# start any one command, so each module's imports are paid by all (docs/performance.md)
if TYPE_CHECKING:
    from rich.console import Console

    from courier.core.deliver import DeliveryReport
    from courier.core.reception import ReceiptOutcome


def size(n: int | None) -> str:
    return "unknown" if n is None else format_bytes(n)


def warnings(console: Console, items: list[str]) -> None:
    """Each warning as a red panel: the operator must see it and tell the clinic."""
    from rich.panel import Panel

    for text in items:
        console.print(Panel(text, title="WARNING", title_align="left", border_style="bold red"))


def receipt(
    console: Console, outcome: ReceiptOutcome | None, what: str = "Reception receipt"
) -> None:
    from rich.panel import Panel

    if outcome is None:
        return
    if outcome.files is not None:
        console.print(f"{what} for the clinic: [bold]{outcome.files.html}[/bold]")
        return
    console.print(
        Panel(
            f"{what} {outcome.receipt_id} could not be left at the clinic: {outcome.reason}.\n"
            f"It is kept, encrypted, in {outcome.fallback}.\n"
            "Hand it over with `courier deliver FACILITY --receipts DIR` (a writable folder of "
            "the clinic, or a USB stick for them); the next pull also tries again.",
            title="RECEIPT NOT DELIVERED",
            title_align="left",
            border_style="bold yellow",
        )
    )


def delivery(console: Console, report: DeliveryReport | None) -> None:
    if report is None:
        return
    for item in report.delivered:
        note = (
            f", {item.confirmed_instances} instances confirmed stored"
            if item.confirmed_instances
            else ""
        )
        console.print(f"Delivered {item.kind} {item.document_id} to the clinic{note}.")
    for left in report.left:
        style = "bold red" if left.refused else "yellow"
        label = "REFUSED" if left.refused else "not delivered"
        console.print(f"[{style}]{label}[/{style}] {left.document_id}: {left.reason}")
