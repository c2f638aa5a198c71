"""The `courier` command: the field operator's tool for a clinic visit.

Every command module is imported to start any one command (typer needs their signatures), so
the command modules import their core modules and rich inside the command functions, when the
command runs: a re-scan is dominated by start-up otherwise (docs/performance.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from common.boundary import DEBUG_VARIABLE
from common.clihelp import one_line_summaries
from common.environment import Environment
from courier.cli import bundle as bundle_cli
from courier.cli import deliver as deliver_cli
from courier.cli import device as device_cli
from courier.cli import drive as drive_cli
from courier.cli import facility as facility_cli
from courier.cli import log as log_cli
from courier.cli import pull as pull_cli
from courier.cli import receipt as receipt_cli
from courier.cli import scan as scan_cli
from courier.cli import verify as verify_cli
from courier.cli.state import CourierState, default_home
from courier.core.device import CourierHome
from courier.core.drives import DriveProbe, UdevProbe


def drive_probe() -> DriveProbe:
    """Where `courier drives` and `--drive auto` learn what is plugged in (tests replace it:
    there is no USB drive to plug in on a build machine)."""
    return UdevProbe()


app = typer.Typer(
    name="courier",
    help="Carry a clinic's flagged studies to the storage center on an encrypted drive.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def main_callback(
    ctx: typer.Context,
    home: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional on older Pythons' introspection
        typer.Option(
            "--home",
            envvar="COURIER_HOME",
            help="Folder holding this device's keys and journal (internal disk).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
) -> None:
    """Carry a clinic's flagged studies to the storage center on an encrypted drive."""
    if debug:
        os.environ[DEBUG_VARIABLE] = "1"
    env = Environment.from_process()
    ctx.obj = CourierState(env, CourierHome(home or default_home(env.environ)), drive_probe())


app.command("init")(device_cli.init)
app.add_typer(facility_cli.app, name="facility")
app.command("scan")(scan_cli.scan)
app.command("pull")(pull_cli.pull)
app.command("deliver")(deliver_cli.deliver)
app.add_typer(receipt_cli.app, name="receipt")
app.command("drives")(drive_cli.drives)
app.add_typer(drive_cli.app, name="drive")
app.command("log")(log_cli.log)
app.command("verify")(verify_cli.verify)
app.add_typer(bundle_cli.app, name="bundle")
one_line_summaries(app)


def main() -> None:
    app()
