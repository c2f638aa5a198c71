"""One-line command summaries in `--help` listings.

Typer's rich help lists each command with the first paragraph of its docstring but, unlike the
command's own help page, keeps that paragraph's line breaks: a docstring wrapped at 100
columns then shows as a summary broken mid-sentence. :func:`one_line_summaries` gives every
command of an app (and of its sub-apps) a ``short_help`` made of that paragraph on one line,
unless the command sets its own.
"""

from __future__ import annotations

import inspect

import typer


def summary(doc: str | None) -> str | None:
    """The first paragraph of *doc*, its lines joined by single spaces."""
    if not doc:
        return None
    first = inspect.cleandoc(doc).split("\n\n", 1)[0]
    return " ".join(line.strip() for line in first.splitlines() if line.strip()) or None


def one_line_summaries(app: typer.Typer) -> typer.Typer:
    """Set the ``short_help`` of every command of *app* and its sub-apps; return *app*."""
    for command in app.registered_commands:
        if command.short_help is None:
            callback = command.callback
            command.short_help = summary(command.help or getattr(callback, "__doc__", None))
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub is not None:
            one_line_summaries(sub)
            if group.short_help is None and group.help is None:
                info = sub.info
                group.short_help = summary(
                    info.help if isinstance(info.help, str) else None
                ) or summary(getattr(info.callback, "__doc__", None))
    return app
