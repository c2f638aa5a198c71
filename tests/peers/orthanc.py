"""A real Orthanc (Debian package) as a test peer: a clinic PACS, or an export target.

:func:`start_orthanc` writes a config with free ports, storage in a temporary folder,
``RemoteAccessAllowed: false`` and no plugins, and starts ``/usr/sbin/Orthanc``. Orthanc 1.10
cannot bind to one address, so where ``unshare -n`` works it runs in a network namespace of its
own that holds only loopback: nothing outside the test can reach it. Clients then enter that
namespace: in-process code inside ``with peer.network():`` (the calling thread joins the
namespace, and threads it starts inherit it), child processes through :meth:`command`. Where
namespaces are not available it listens on every interface of the host and is talked to on
127.0.0.1 only.

Use the fixture factory :func:`orthanc_factory` (pytest fixture, session scope): it returns a
function that starts a peer and stops every peer at the end of the session. A missing Orthanc
skips the test, except under CI=true, where it fails (tests/conftest.py::require_tool).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool

CLONE_NEWNET = 0x40000000
_START_TIMEOUT = 30.0  # seconds to wait for a cold start (creating its SQLite index)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def namespaces_work() -> bool:
    """True when this process may create a network namespace and bring loopback up in it."""
    if not Path("/usr/bin/unshare").exists() and not Path("/bin/unshare").exists():
        return False
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@dataclass
class OrthancPeer:
    """One running Orthanc."""

    aet: str
    dicom_port: int
    http_port: int
    root: Path
    process: subprocess.Popen[bytes]
    in_namespace: bool
    log: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @contextlib.contextmanager
    def network(self) -> Iterator[None]:
        """Run the block (and the threads it starts) in Orthanc's network namespace."""
        if not self.in_namespace:
            yield
            return
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/proc/{self.process.pid}/ns/net", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)
            os.close(target)

    def command(self, argv: list[str]) -> list[str]:
        """*argv* prefixed so that it runs in Orthanc's network namespace."""
        if not self.in_namespace:
            return argv
        return ["nsenter", f"--net=/proc/{self.process.pid}/ns/net", *argv]

    def rest(self, method: str, path: str, body: bytes | None = None) -> Any:
        # S310: the URL is always http://127.0.0.1:<port> built here, never user input.
        request = urllib.request.Request(self.url + path, data=body, method=method)  # noqa: S310
        with self.network(), urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            data = response.read()
        return json.loads(data) if data else None

    def load_rest(self, files: Iterable[Path]) -> int:
        """Store files through the REST API (``POST /instances``); return how many."""
        count = 0
        for path in files:
            self.rest("POST", "/instances", path.read_bytes())
            count += 1
        return count

    def load_dicom(self, files: Iterable[Path], *, calling_aet: str = "LOADER") -> int:
        """Store files through the DICOM port (C-STORE, TCP_NODELAY and quick ACKs as the
        courier's own associations); return how many."""
        from pydicom import dcmread
        from pynetdicom import AE, StoragePresentationContexts, evt

        from courier.core.node import tune_transport

        def nodelay(event: evt.Event) -> None:
            tune_transport(event.assoc.dul.socket)

        ae = AE(ae_title=calling_aet)
        ae.requested_contexts = StoragePresentationContexts
        count = 0
        with self.network():
            assoc = ae.associate(
                self.host,
                self.dicom_port,
                ae_title=self.aet,
                evt_handlers=[(evt.EVT_CONN_OPEN, nodelay)],
            )
            if not assoc.is_established:
                raise RuntimeError("Orthanc refused the loading association")
            try:
                for path in files:
                    status = assoc.send_c_store(dcmread(path))
                    if not status or status.Status != 0x0000:
                        raise RuntimeError(f"C-STORE of {path.name} failed: {status}")
                    count += 1
            finally:
                assoc.release()
        return count

    def instance_count(self) -> int:
        return int(self.rest("GET", "/statistics")["CountInstances"])

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.process.kill()  # a throw-away peer: its storage is a temporary folder
        self.process.wait()


def start_orthanc(
    workdir: Path,
    *,
    aet: str = "CLINICPACS",
    modalities: dict[str, tuple[str, str, int]] | None = None,
    check_called_aet: bool = True,
    always_allow: bool = False,
    extra: dict[str, Any] | None = None,
) -> OrthancPeer:
    """Start an Orthanc with storage under *workdir*; wait until it answers.

    *modalities* are the DICOM peers it knows (name -> (AE title, host, port)); with
    *always_allow* False, only they may query, retrieve or store. *check_called_aet* makes it
    reject associations addressed to another AE title.
    """
    binary = require_tool("Orthanc")
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = _free_port(), _free_port()
    config = {
        "Name": "clinic-archive test peer",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "DicomCheckCalledAet": check_called_aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [],
        "DicomModalities": {
            name: [title, host, port] for name, (title, host, port) in (modalities or {}).items()
        },
        "DicomAlwaysAllowEcho": always_allow,
        "DicomAlwaysAllowStore": always_allow,
        "DicomAlwaysAllowFind": always_allow,
        "DicomAlwaysAllowGet": always_allow,
        "DicomAlwaysAllowMove": always_allow,
        "UnknownSopClassAccepted": True,
        "StableAge": 1,
        "HttpServerEnabled": True,
        "StorageCompression": False,
        "TcpNoDelay": True,
        **(extra or {}),
    }
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = workdir / "orthanc.log"
    in_namespace = namespaces_work()
    argv = [binary, "--logfile=" + str(log), str(config_path)]
    if in_namespace:
        argv = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "orthanc", *argv]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peer = OrthancPeer(aet, dicom_port, http_port, workdir, process, in_namespace, log)
    _wait_ready(peer)
    return peer


def _wait_ready(peer: OrthancPeer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if peer.process.poll() is not None:
            tail = peer.log.read_text(errors="replace")[-2000:] if peer.log.exists() else ""
            raise RuntimeError(
                f"Orthanc exited at start-up (code {peer.process.returncode}):\n{tail}"
            )
        try:
            peer.rest("GET", "/system")
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                peer.stop()
                raise RuntimeError("Orthanc did not answer within its start-up time") from None
            time.sleep(0.05)


@pytest.fixture(scope="session")
def orthanc_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., OrthancPeer]]:
    """A function starting Orthanc peers (keyword arguments of :func:`start_orthanc`); every
    peer is stopped at the end of the session."""
    peers: list[OrthancPeer] = []

    def factory(**kwargs: Any) -> OrthancPeer:
        peer = start_orthanc(tmp_path_factory.mktemp("orthanc"), **kwargs)
        peers.append(peer)
        return peer

    yield factory
    for peer in peers:
        peer.stop()
