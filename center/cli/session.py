"""Opening the archive for one command on behalf of an authenticated, authorised operator.

Every center command that reads or changes patient data goes through :func:`operator_session`
with the action it performs (contract C6), so that who may do what is decided in one place
(:mod:`center.core.operators`). The operator is named by ``--operator`` / ``CENTER_OPERATOR``;
the passphrase comes from ``CENTER_OPERATOR_PASSPHRASE``, the file named by
``CENTER_OPERATOR_PASSPHRASE_FILE``, or a prompt, and never from a command-line argument.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from center.cli.state import PASSPHRASE_PREFIX, CenterState, state
from common.boundary import read_passphrase

# the archive and its catalog are imported when a session opens: `center` imports every
# command module to start one, and `center --help` opens no archive
if TYPE_CHECKING:
    from center.core.archive import Archive

OPERATOR_PASSPHRASE_PREFIX = "CENTER_OPERATOR"  # noqa: S105 - a variable-name prefix
NEW_PASSPHRASE_PREFIX = "CENTER_NEW_OPERATOR"  # noqa: S105 - a variable-name prefix


@dataclass(frozen=True)
class Session:
    state: CenterState
    archive: Archive
    operator: str
    role: str


def operator_passphrase(st: CenterState, name: str) -> str:
    return read_passphrase(
        st.env.environ, OPERATOR_PASSPHRASE_PREFIX, prompt=f"Passphrase of operator {name}"
    )


def new_operator_passphrase(st: CenterState, name: str) -> str:
    """A new passphrase for *name*: CENTER_NEW_OPERATOR_PASSPHRASE(_FILE) or a confirmed prompt."""
    return read_passphrase(
        st.env.environ,
        NEW_PASSPHRASE_PREFIX,
        prompt=f"New passphrase for operator {name}",
        confirm=True,
    )


def center_passphrase(st: CenterState) -> str:
    return read_passphrase(st.env.environ, PASSPHRASE_PREFIX, prompt="Center passphrase")


@contextlib.contextmanager
def operator_session(ctx: typer.Context, action: str) -> Iterator[Session]:
    """Open the archive for *action* by the named operator, once authenticated and allowed.

    A wrong passphrase, a disabled operator or a role without *action* is refused with its
    own error and recorded in the audit log as a security alert.
    """
    from center.core.archive import open_archive
    from center.core.operators import authorise

    st = state(ctx)
    name = st.require_operator()
    with open_archive(st.require_archive()) as archive:
        operator = authorise(
            archive.conn, name, operator_passphrase(st, name), action, now=st.env.now()
        )
        yield Session(st, archive, operator.name, operator.role)


CENTER_KEY = "center-key"


@contextlib.contextmanager
def management_session(ctx: typer.Context) -> Iterator[Session]:
    """An administrator's session for `center operator add`.

    While the archive has no active administrator (an archive made before operators existed,
    or every admin disabled), the holder of the center passphrase stands in: the session's
    role is then ``center-key``, and only an administrator may be created.
    """
    from center.core.archive import open_archive
    from center.core.operators import active_admins, prove_center_key

    st = state(ctx)
    root = st.require_archive()
    with open_archive(root) as archive:
        if active_admins(archive.conn) == 0:
            name = (st.operator or "").strip()
            prove_center_key(archive, center_passphrase(st), name=name, now=st.env.now())
            yield Session(st, archive, name, CENTER_KEY)
            return
    with operator_session(ctx, "operator") as session:
        yield session
