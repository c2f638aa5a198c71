"""Opening the archive for one command on behalf of a named operator.

Every center command that reads or changes patient data goes through :func:`operator_session`
with the action it performs, so that who may do what is decided in one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import typer

from center.cli.state import CenterState, state
from center.core.archive import Archive, open_archive


@dataclass(frozen=True)
class Session:
    state: CenterState
    archive: Archive
    operator: str


@contextlib.contextmanager
def operator_session(ctx: typer.Context, action: str) -> Iterator[Session]:
    """Open the archive for *action*, run by the named operator (refused without one)."""
    st = state(ctx)
    operator = st.require_operator()
    with open_archive(st.require_archive()) as archive:
        yield Session(st, archive, operator)
