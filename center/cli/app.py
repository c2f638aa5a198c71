"""The `center` command: import, verify and keep clinics' studies."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from center.cli import audit as audit_cli
from center.cli import bundles as bundles_cli
from center.cli import check as check_cli
from center.cli import courier as courier_cli
from center.cli import expiry as expiry_cli
from center.cli import export as export_cli
from center.cli import facility as facility_cli
from center.cli import hold as hold_cli
from center.cli import importer as import_cli
from center.cli import init as init_cli
from center.cli import operator as operator_cli
from center.cli import receipt as receipt_cli
from center.cli import request as request_cli
from center.cli import retention as retention_cli
from center.cli import search as search_cli
from center.cli.state import CenterState
from common.boundary import DEBUG_VARIABLE
from common.clihelp import one_line_summaries

app = typer.Typer(
    name="center",
    help="Import couriers' bundles and keep clinics' studies for their retention period.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def main_callback(
    ctx: typer.Context,
    archive: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--archive", envvar="CENTER_ARCHIVE", help="The archive folder."),
    ] = None,
    operator: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--operator",
            envvar="CENTER_OPERATOR",
            help="Your name; every action is logged with it.",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
) -> None:
    """Import couriers' bundles and keep clinics' studies for their retention period."""
    # imported when a command runs, not for `center --help`: it loads the crypto library
    from common.environment import Environment

    if debug:
        os.environ[DEBUG_VARIABLE] = "1"
    ctx.obj = CenterState(Environment.from_process(), archive, operator)


app.command("init")(init_cli.init)
app.command("import")(import_cli.import_drive)
app.add_typer(courier_cli.app, name="courier")
app.add_typer(receipt_cli.app, name="receipt")
app.add_typer(audit_cli.app, name="audit")
app.command("check")(check_cli.check)
app.add_typer(operator_cli.app, name="operator")
app.command("search")(search_cli.search_studies)
app.add_typer(retention_cli.app, name="retention")
app.add_typer(expiry_cli.app, name="expiry")
app.add_typer(hold_cli.app, name="hold")
app.add_typer(facility_cli.app, name="facility")
app.command("export")(export_cli.export)
app.add_typer(request_cli.app, name="request")
app.add_typer(bundles_cli.app, name="bundles")
one_line_summaries(app)


def main() -> None:
    app()
