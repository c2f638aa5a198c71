"""Sending instances to a PACS with C-STORE (DICOM PS3.4 Annex B, PS3.7 9.1.1), via pynetdicom.

One association carries a whole export. Its presentation contexts are exactly the (SOP class,
transfer syntax) pairs of the files to send, so nothing is transcoded: each file's data set is
sent as stored (pynetdicom's chunked sending of a file, without decoding it). The socket has
TCP_NODELAY set, so small PDUs are not held back by Nagle's algorithm against the peer's
delayed ACK (dcmtk's storescu, which does not set it, stalls about 40 ms per instance).
"""

from __future__ import annotations

import contextlib
import functools
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import PacsError

if TYPE_CHECKING:  # pynetdicom is imported when a session opens: 70 ms every command would pay
    from pynetdicom import AE
    from pynetdicom.association import Association

CALLING_AE_TITLE = "CLINICARCHIVE"
MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context ids are odd numbers 1..255
# PS3.7 C.4.2.1.4 (Table B.2-1): warnings mean the instance was stored.
_WARNINGS = {0x0001, 0xB000, 0xB006, 0xB007}
_ADDRESS = re.compile(
    r"^(?P<aet>[^@]{1,16})@(?P<host>\[[0-9a-fA-F:.]+\]|[^:@]+):(?P<port>\d{1,5})$"
)


@dataclass(frozen=True)
class PacsAddress:
    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_address(text: str) -> PacsAddress:
    """``AET@host:port`` (an IPv6 host in brackets); PacsError naming the problem if not."""
    match = _ADDRESS.match(text.strip())
    if not match or not 0 < int(match["port"]) < 65536 or not match["aet"].strip():
        raise PacsError(
            f"{text!r} is not a DICOM destination of the form AET@host:port",
            hint="For example ORTHANC@192.0.2.10:4242 (the called AE title, then host and port).",
        )
    return PacsAddress(match["aet"].strip(), match["host"].strip("[]"), int(match["port"]))


@functools.cache
def _no_delay_ae() -> type[AE]:
    """An AE class whose association sockets send small PDUs at once (TCP_NODELAY)."""
    from pynetdicom import AE
    from pynetdicom.transport import AddressInformation, AssociationSocket

    class NoDelayAE(AE):
        def _create_socket(
            self,
            assoc: Association,
            address: AddressInformation,
            tls_args: tuple[ssl.SSLContext, str] | None,
        ) -> AssociationSocket:
            sock: AssociationSocket = super()._create_socket(assoc, address, tls_args)
            if sock.socket is not None:
                sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

    return NoDelayAE


@dataclass
class StoreSession:
    """An open association for C-STORE; :meth:`send` one file at a time."""

    address: PacsAddress
    assoc: Association

    def send(self, path: Path, *, what: str) -> int:
        """Send the Part 10 file *path*; return the status (success or warning), else raise."""
        try:
            status = self.assoc.send_c_store(path)
        except (AttributeError, ValueError, RuntimeError, OSError) as exc:
            raise PacsError(f"{what} could not be sent to {self.address}: {exc}") from exc
        if not status or "Status" not in status:
            raise PacsError(
                f"{self.address} did not answer the C-STORE of {what} (association lost or "
                "timed out)"
            )
        code = int(status.Status)
        if code != 0x0000 and code not in _WARNINGS:
            raise PacsError(f"{self.address} refused {what} with status 0x{code:04X}")
        return code


@contextlib.contextmanager
def store_session(
    address: PacsAddress,
    contexts: set[tuple[str, str]],
    *,
    calling_ae_title: str = CALLING_AE_TITLE,
    timeout: float = 60.0,
) -> Iterator[StoreSession]:
    """An association with *address* proposing *contexts* (SOP class, transfer syntax)."""
    if len(contexts) > MAX_CONTEXTS:
        raise PacsError(
            f"the export needs {len(contexts)} presentation contexts, more than one "
            f"association carries ({MAX_CONTEXTS})",
            hint="Export fewer studies at a time.",
        )
    from pynetdicom import _config

    ae = _no_delay_ae()(ae_title=calling_ae_title)
    ae.connection_timeout = min(timeout, 15.0)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    for sop_class, syntax in sorted(contexts):
        ae.add_requested_context(sop_class, syntax)
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True  # send files as stored, without decoding them
    try:
        assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
        if not assoc.is_established:
            reason = "rejected the association" if assoc.is_rejected else "could not be reached"
            raise PacsError(f"{address} {reason}")
        try:
            accepted = {
                (str(c.abstract_syntax), str(c.transfer_syntax[0])) for c in assoc.accepted_contexts
            }
            missing = sorted(contexts - accepted)
            if missing:
                sop_class, syntax = missing[0]
                raise PacsError(
                    f"{address} does not accept SOP class {sop_class} in transfer syntax "
                    f"{syntax} ({len(missing)} combination(s) refused); nothing was sent",
                    hint="Ask the PACS administrator to accept these objects, or export to a "
                    "folder instead.",
                )
            yield StoreSession(address, assoc)
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
