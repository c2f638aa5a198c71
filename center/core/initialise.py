"""`center init` as one step: the archive with its keys, and its first administrator."""

from __future__ import annotations

from pathlib import Path

from center.core.archive import InitResult, init_archive, open_archive
from center.core.operators import add_operator, check_name, check_new_passphrase
from common.environment import Environment


def create_archive(
    root: Path,
    *,
    center_name: str,
    passphrase: str,
    escrow_passphrase: str,
    admin: str,
    admin_passphrase: str,
    env: Environment,
) -> InitResult:
    """Create an archive (see :func:`init_archive`) whose first operator is the admin *admin*.

    The admin's name and passphrase are checked before anything is written. Should the
    process stop between the two steps, the archive has no operator and the center passphrase
    lets `center operator add NAME --role admin` create one.
    """
    check_name(admin)
    check_new_passphrase(
        admin_passphrase, center_passphrase=passphrase, escrow_passphrase=escrow_passphrase
    )
    result = init_archive(
        root,
        center_name=center_name,
        passphrase=passphrase,
        escrow_passphrase=escrow_passphrase,
        env=env,
    )
    with open_archive(root) as archive:
        add_operator(
            archive.conn,
            admin,
            role="admin",
            passphrase=admin_passphrase,
            by=admin.strip(),
            now=env.now(),
            log_n=env.kdf_log_n,
            authorised_by="init",
        )
    return result
