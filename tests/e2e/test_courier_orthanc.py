"""The clinic terminal as a real PACS: Debian's Orthanc, loaded through its DICOM port.

The courier queries it (C-FIND) and retrieves the A studies (C-GET) on its own association;
the peer runs with free ports, storage in a temporary folder, no plugins, and (where
namespaces work) in a network namespace of its own (tests/peers/orthanc.py).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from center.core.archive import CenterKeys
from common.errors import DicomAssociationRejected, DicomNodeUnreachable, DicomWrongAETitle
from courier.cli.app import app
from courier.core.device import CourierHome, UnlockedDevice
from courier.core.drive import Drive
from courier.core.facilities import Facility
from courier.core.node import NodeClient
from courier.core.pull import pull
from courier.core.scan import scan
from courier.core.source import NodeSource
from examples.clinic_terminal import TerminalSpec, generate_terminal
from tests.conftest import COURIER_PASS, NOW, Terminal
from tests.courier.conftest import a_instances, decrypt_bundle, sealed_bundles
from tests.peers.orthanc import OrthancPeer, orthanc_factory  # noqa: F401 - fixture

pytestmark = pytest.mark.peer
PACS_AET = "CLINICPACS"


@pytest.fixture(scope="module")
def pacs_terminal(tmp_path_factory: pytest.TempPathFactory) -> Terminal:
    root = tmp_path_factory.mktemp("pacs") / "terminal"
    spec = TerminalSpec(seed=21, patients=3, studies=6, pixel_bytes=2048)
    return Terminal(root, generate_terminal(root, spec))


@pytest.fixture(scope="module")
def pacs(orthanc_factory: Callable[..., OrthancPeer], pacs_terminal: Terminal) -> OrthancPeer:  # noqa: F811
    """An Orthanc that knows the courier's AE title, loaded with the terminal over DICOM."""
    peer = orthanc_factory(
        aet=PACS_AET,
        modalities={
            "courier": ("COURIER", "127.0.0.1", 104),
            "loader": ("LOADER", "127.0.0.1", 104),
        },
    )
    files = [
        pacs_terminal.root / i.path for s in pacs_terminal.manifest.studies for i in s.instances
    ]
    assert peer.load_dicom(files) == len(files) == peer.instance_count()
    return peer


def _node(peer: OrthancPeer, *, aet: str = PACS_AET) -> str:
    return f"dicom://{aet}@127.0.0.1:{peer.dicom_port}"


def _settings(source: str, calling_aet: str = "COURIER") -> Facility:
    return Facility("clinic-pacs", "PACS clinic", source, calling_aet=calling_aet)


def test_pull_over_c_get_takes_exactly_the_a_studies(
    pacs: OrthancPeer,
    pacs_terminal: Terminal,
    device: UnlockedDevice,
    drive: Drive,
    center_keys: CenterKeys,
) -> None:
    """A pull from the PACS seals one bundle holding each A instance once, with the same
    data set the clinic stored (Orthanc may re-encode the file meta, never the data)."""
    with pacs.network():
        result = pull(device, settings=_settings(_node(pacs)), drive=drive, now=NOW)
    assert result.bundle_id is not None and result.node_failures == 0
    objects = decrypt_bundle(sealed_bundles(drive.root)[0], center_keys.identity)
    expected = a_instances(pacs_terminal)
    assert set(objects) == set(expected)
    for uid, data in expected.items():
        [received] = objects[uid]
        original = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
        pulled = pydicom.dcmread(pydicom.filebase.DicomBytesIO(received))
        assert pulled == original
    assert result.plan.not_selected == sum(
        len(s.instances) for s in pacs_terminal.manifest.b_studies
    )


def test_second_pull_from_the_pacs_takes_nothing(
    pacs: OrthancPeer, device: UnlockedDevice, drive: Drive
) -> None:
    """Instances already carried are not retrieved again."""
    with pacs.network():
        pull(device, settings=_settings(_node(pacs)), drive=drive, now=NOW)
        again = pull(device, settings=_settings(_node(pacs)), drive=drive, now=NOW)
    assert again.bundle_id is None and again.plan.already_carried > 0


def test_scan_of_the_pacs_lists_the_a_studies(
    pacs: OrthancPeer, pacs_terminal: Terminal, device: UnlockedDevice
) -> None:
    """`courier scan` against the PACS lists each A study with its instance count."""
    with pacs.network():
        result = scan(device, _settings(_node(pacs)), NOW)
    listed = {s.accession: s.instances for s in result.studies}
    assert listed == {s.accession: len(s.instances) for s in pacs_terminal.manifest.a_studies}


def test_associations_set_tcp_nodelay(pacs: OrthancPeer) -> None:
    """Our association's socket has TCP_NODELAY on as soon as it is connected."""
    client = NodeClient(NodeSource(PACS_AET, "127.0.0.1", pacs.dicom_port))
    seen: list[int] = []
    with pacs.network():
        from pynetdicom import build_context
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

        context = build_context(StudyRootQueryRetrieveInformationModelFind)
        with client.association([context]) as assoc:
            sock = assoc.dul.socket.socket
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    assert seen == [1] and client.nodelay_set


def test_wrong_ae_title_is_its_own_error(
    pacs: OrthancPeer, device: UnlockedDevice, drive: Drive
) -> None:
    """A node that does not answer to the configured AE title gives dicom-wrong-ae-title."""
    with pacs.network(), pytest.raises(DicomWrongAETitle, match="NOTTHEPACS"):
        pull(
            device,
            settings=_settings(f"dicom://NOTTHEPACS@127.0.0.1:{pacs.dicom_port}"),
            drive=drive,
            now=NOW,
        )


def test_unknown_calling_ae_title_is_refused(
    pacs: OrthancPeer, device: UnlockedDevice, drive: Drive
) -> None:
    """A PACS that does not know our AE title refuses the association: its own error."""
    source = f"dicom://{PACS_AET}@127.0.0.1:{pacs.dicom_port}"
    with pacs.network(), pytest.raises(DicomAssociationRejected, match="STRANGER"):
        pull(device, settings=_settings(source, calling_aet="STRANGER"), drive=drive, now=NOW)


def test_unreachable_node_is_its_own_error(device: UnlockedDevice, drive: Drive) -> None:
    """Nothing listening at the node's port gives dicom-node-unreachable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DicomNodeUnreachable, match=str(port)):
        pull(device, settings=_settings(f"dicom://PACS@127.0.0.1:{port}"), drive=drive, now=NOW)


def test_unknown_host_is_unreachable(device: UnlockedDevice, drive: Drive) -> None:
    """A host name that does not resolve is reported as an unreachable node."""
    with pytest.raises(DicomNodeUnreachable):
        pull(
            device,
            settings=_settings("dicom://PACS@no-such-host.invalid:104"),
            drive=drive,
            now=NOW,
        )


def test_peer_listens_only_inside_its_namespace(pacs: OrthancPeer) -> None:
    """Where namespaces work, the peer's DICOM port is not reachable from the host."""
    if not pacs.in_namespace:
        pytest.skip("network namespaces are not available here")
    with socket.socket() as sock:
        sock.settimeout(2)
        assert sock.connect_ex(("127.0.0.1", pacs.dicom_port)) != 0


def test_peer_storage_is_in_the_temporary_folder(pacs: OrthancPeer) -> None:
    """The peer keeps its files under its own temporary folder."""
    assert any((pacs.root / "storage").rglob("*"))


def test_pull_command_with_a_dicom_source(
    pacs: OrthancPeer, pacs_terminal: Terminal, courier_home: CourierHome, tmp_path: Path
) -> None:
    """`courier pull ID --source dicom://AET@host:port` works from the command line."""
    drive = tmp_path / "drive"
    drive.mkdir()
    env = {
        "COURIER_HOME": str(courier_home.root),
        "COURIER_PASSPHRASE": COURIER_PASS,
        "NO_COLOR": "1",
        "COLUMNS": "160",
    }
    args = ["pull", "clinic-pacs", "--source", _node(pacs), "--drive", str(drive), "--json"]
    with pacs.network():
        result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["instances"] == sum(len(s.instances) for s in pacs_terminal.manifest.a_studies)
    assert out["source"] == _node(pacs) and out["capacity"] is None
