"""The one error boundary of both CLIs (STYLE.md point 7), and passphrase input.

Domain errors become a short panel on stderr (what happened, what to do, a stable reference)
and exit with the class's code. Anything else is an internal error: one line asking to re-run
with ``--debug`` (which shows the traceback, never with local variables). Nothing here prints
a passphrase, a key or patient data.
"""

from __future__ import annotations

import functools
import getpass
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from common.errors import ArchiveError, ConfigError, PassphraseError

if TYPE_CHECKING:
    from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")
INTERNAL_EXIT = 70
DEBUG_VARIABLE = "CLINIC_ARCHIVE_DEBUG"


def stderr_console() -> Console:
    # rich is imported only when there is something to show: a command that succeeds with
    # --json never loads it (docs/performance.md, re-scan)
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def render_error(console: Console, error: ArchiveError) -> None:
    from rich.panel import Panel
    from rich.text import Text

    body = Text(error.message)
    if error.hint:
        body.append("\n")
        body.append(error.hint, style="bold")
    console.print(
        Panel(
            body, title=f"error: {error.ref}", title_align="left", border_style="red", expand=False
        )
    )


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def error_boundary(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a typer command: domain errors become a panel and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ArchiveError as exc:
            render_error(stderr_console(), exc)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception:  # the boundary itself: nothing else may catch everything
            if debug_enabled():
                raise
            stderr_console().print(
                "[red]internal error[/red]: this is a bug. Re-run with --debug to see the "
                "traceback, and report it (the traceback holds no passphrase or patient data)."
            )
            raise typer.Exit(INTERNAL_EXIT) from None

    return wrapper


def read_passphrase(
    environ: Mapping[str, str], prefix: str, *, prompt: str, confirm: bool = False
) -> str:
    """A passphrase from ``<prefix>_PASSPHRASE``, ``<prefix>_PASSPHRASE_FILE`` or a prompt.

    Never from a command-line argument: those are visible to every user of the machine.
    """
    if value := environ.get(f"{prefix}_PASSPHRASE"):
        return value
    if file := environ.get(f"{prefix}_PASSPHRASE_FILE"):
        try:
            return Path(file).read_text("utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot read {prefix}_PASSPHRASE_FILE ({file}): {exc.strerror}"
            ) from exc
    if not sys.stdin.isatty():
        raise PassphraseError(
            "a passphrase is needed and there is no terminal to ask it on",
            hint=f"Set {prefix}_PASSPHRASE_FILE to a file holding it, or run interactively.",
        )
    first = getpass.getpass(f"{prompt}: ")
    if confirm and getpass.getpass("Repeat it: ") != first:
        raise PassphraseError("the two passphrases differ", hint="Run the command again.")
    return first
