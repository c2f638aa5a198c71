"""A clinic's PACS as the source: C-FIND, then C-GET, with pynetdicom (PS3.4 annex C).

Queries use the Study Root information model, hierarchically: studies (with the selection
rule's element as a return key), then the series and instances of each selected study. The
instances still missing are retrieved with C-GET, so the node sends them back on our own
association (PS3.4 C.4.3) and needs no route to the laptop. Every association sets TCP_NODELAY
as soon as its connection opens, and acknowledges what it reads at once (TCP_QUICKACK):
without them, each small DIMSE message can wait for a delayed ACK (about 40 ms on Linux),
which caps a transfer at some 20 instances per second (:func:`tune_transport`).

Failures are named: the node cannot be reached (:class:`DicomNodeUnreachable`), it does not
answer to its configured AE title (:class:`DicomWrongAETitle`), it refuses us
(:class:`DicomAssociationRejected`), or a query or retrieval fails
(:class:`DicomTransferFailed`).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset
from pydicom.datadict import dictionary_VR
from pydicom.tag import Tag
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, StoragePresentationContexts, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)
from pynetdicom.transport import AssociationSocket

from common.dicomhdr import TagRef
from common.errors import (
    ArchiveError,
    ConfigError,
    DicomAssociationRejected,
    DicomNodeUnreachable,
    DicomTransferFailed,
    DicomWrongAETitle,
)
from courier.core.plan import InstanceRef, SeriesRef, StudyMatch
from courier.core.source import NodeSource

_NATIVE: list[str] = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
_ENCODED: list[str] = [
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
]
_MAX_CONTEXTS = 127  # PS3.8 9.3.2.2: odd context ids 1..255
_STUDY_KEYS = (
    "StudyInstanceUID",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedInstances",
)
_PENDING = (0xFF00, 0xFF01)
OUT_OF_RESOURCES = 0xA700


def tune_transport(transport: AssociationSocket | None) -> bool:
    """Make small DIMSE messages go out and be acknowledged at once; True if NODELAY is set.

    TCP_NODELAY stops our own writes waiting for the peer's ACK (Nagle). A peer that keeps
    Nagle on (dcmtk as packaged, hence Orthanc) still holds its second small write until we
    ACK the first, and Linux delays that ACK by up to 40 ms: TCP_QUICKACK after every read
    (it does not stick) takes the stall away, about 45 ms to 3 ms per instance on loopback.
    """
    sock = None if transport is None else transport.socket
    if transport is None or sock is None:
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        receive = transport.recv

        def recv_and_ack(nr_bytes: int) -> bytearray:
            data = receive(nr_bytes)
            current = transport.socket
            if current is not None:
                with contextlib.suppress(OSError):
                    current.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            return data

        transport.recv = recv_and_ack  # type: ignore[method-assign]
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


@dataclass
class GetOutcome:
    """The final counts of one C-GET (PS3.4 C.4.3.1.3)."""

    completed: int = 0
    failed: int = 0
    warning: int = 0
    status: int = 0


class NodeClient:
    """Talks to one DICOM node; every public method opens and releases its association."""

    def __init__(self, source: NodeSource, *, timeout: float = 30.0) -> None:
        self.source = source
        self.timeout = timeout
        self.nodelay_set = False  # observable for tests: TCP_NODELAY was applied

    @contextlib.contextmanager
    def association(
        self,
        contexts: list[PresentationContext],
        *,
        roles: Sequence[Any] = (),
        handlers: Sequence[tuple[Any, Callable[..., Any]]] = (),
    ) -> Iterator[Association]:
        ae = AE(ae_title=self.source.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.connection_timeout = self.timeout
        opened: list[bool] = []

        def on_open(event: evt.Event) -> None:
            self.nodelay_set = tune_transport(event.assoc.dul.socket)
            opened.append(True)

        try:
            assoc = ae.associate(
                self.source.host,
                self.source.port,
                contexts=contexts,
                ae_title=self.source.ae_title,
                ext_neg=list(roles),
                evt_handlers=[(evt.EVT_CONN_OPEN, on_open), *handlers],
            )
        except (OSError, ValueError) as exc:  # name resolution, invalid address
            raise self._unreachable(str(exc)) from exc
        if not assoc.is_established:
            raise self._refusal(assoc, bool(opened))
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _unreachable(self, detail: str) -> DicomNodeUnreachable:
        return DicomNodeUnreachable(
            f"cannot connect to the DICOM node {self.source.describe()} ({detail})"
        )

    def _refusal(self, assoc: Association, connected: bool) -> ArchiveError:
        where = self.source.describe()
        if not connected:
            return self._unreachable("no answer on that host and port")
        if assoc.is_rejected:
            rsp = assoc.acceptor.primitive
            source, diagnostic = getattr(rsp, "result_source", 0), getattr(rsp, "diagnostic", 0)
            if source == 1 and diagnostic == 7:  # PS3.8 9.3.4: called AE title not recognized
                return DicomWrongAETitle(
                    f"the node at {self.source.host}:{self.source.port} does not answer to the "
                    f"AE title {self.source.ae_title!r} (called AE title not recognised)"
                )
            if source == 1 and diagnostic == 3:  # calling AE title not recognized
                return DicomAssociationRejected(
                    f"{where} does not accept our AE title {self.source.calling_aet!r} "
                    "(calling AE title not recognised)"
                )
            reason = getattr(rsp, "reason_str", "no reason given")
            return DicomAssociationRejected(f"{where} rejected the association ({reason})")
        return DicomAssociationRejected(
            f"{where} aborted the association: it may not offer Study Root query/retrieve "
            "(C-FIND and C-GET) to us"
        )

    # -- queries ----------------------------------------------------------------------

    def find_studies(self, tags: Sequence[TagRef]) -> list[StudyMatch]:
        """Every study on the node, with the standard keys and the values of *tags*."""
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        for keyword in _STUDY_KEYS:
            setattr(query, keyword, "")
        for ref in tags:
            _add_return_key(query, ref)
        context = build_context(StudyRootQueryRetrieveInformationModelFind)
        with self.association([context]) as assoc:
            found = self._find(assoc, query, "study query")
        return [_study(ds, tags) for ds in found]

    def find_series(self, study_uid: str) -> list[SeriesRef]:
        """The series of a study and their instances (SOP Instance and Class UIDs)."""
        context = build_context(StudyRootQueryRetrieveInformationModelFind)
        with self.association([context]) as assoc:
            query = Dataset()
            query.QueryRetrieveLevel = "SERIES"
            query.StudyInstanceUID = study_uid
            query.SeriesInstanceUID = ""
            series_uids = [
                str(ds.SeriesInstanceUID) for ds in self._find(assoc, query, "series query")
            ]
            result = []
            for series_uid in sorted(series_uids):
                query = Dataset()
                query.QueryRetrieveLevel = "IMAGE"
                query.StudyInstanceUID = study_uid
                query.SeriesInstanceUID = series_uid
                query.SOPInstanceUID = ""
                query.SOPClassUID = ""
                refs = tuple(
                    InstanceRef(str(ds.SOPInstanceUID), str(ds.get("SOPClassUID", "")))
                    for ds in self._find(assoc, query, "instance query")
                )
                result.append(SeriesRef(series_uid, refs))
        return result

    def _find(self, assoc: Association, query: Dataset, what: str) -> list[Dataset]:
        found = []
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            if not status:
                raise DicomTransferFailed(
                    f"{self.source.describe()} did not answer the {what} (timeout or aborted)"
                )
            code = int(status.Status)
            if code in _PENDING and identifier is not None:
                found.append(identifier)
            elif code != 0x0000:
                raise DicomTransferFailed(
                    f"{self.source.describe()} refused the {what} (status 0x{code:04X})"
                )
        return found

    # -- retrieval --------------------------------------------------------------------

    def get(
        self,
        study_uid: str,
        series: SeriesRef,
        on_instance: Callable[[str, bytes], None],
        after_response: Callable[[], None],
        *,
        whole_series: bool,
    ) -> GetOutcome:
        """C-GET the instances of *series* (all, or those listed) into *on_instance*.

        *on_instance* (SOP Instance UID, Part 10 bytes) runs in the association's thread and
        may raise OSError or an ArchiveError: the error is kept, the rest of the transfer is
        refused, and it is raised here. *after_response* runs in the caller's thread after
        each pending response and at the end.
        """
        classes = sorted({ref.sop_class_uid for ref in series.instances if ref.sop_class_uid})
        contexts, roles = _storage_contexts(classes)
        contexts.insert(0, build_context(StudyRootQueryRetrieveInformationModelGet))
        failure: list[BaseException] = []

        def on_store(event: evt.Event) -> int:
            if failure:
                return OUT_OF_RESOURCES
            try:
                uid = str(getattr(event.request, "AffectedSOPInstanceUID", ""))
                on_instance(uid, event.encoded_dataset())
            except (OSError, ArchiveError) as exc:
                failure.append(exc)
                return OUT_OF_RESOURCES
            return 0x0000

        query = Dataset()
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series.series_uid
        if whole_series:
            query.QueryRetrieveLevel = "SERIES"
        else:
            query.QueryRetrieveLevel = "IMAGE"
            query.SOPInstanceUID = [ref.sop_uid for ref in series.instances]
        outcome = GetOutcome()
        handlers = [(evt.EVT_C_STORE, on_store)]
        with self.association(contexts, roles=roles, handlers=handlers) as assoc:
            for status, _identifier in assoc.send_c_get(
                query, StudyRootQueryRetrieveInformationModelGet
            ):
                if not status:
                    raise DicomTransferFailed(
                        f"{self.source.describe()} stopped answering during a retrieval"
                    )
                outcome.status = int(status.Status)
                outcome.completed = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
                outcome.failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
                outcome.warning = int(status.get("NumberOfWarningSuboperations", 0) or 0)
                after_response()
                if failure:
                    assoc.abort()
                    break
        if failure:
            raise failure[0]
        if outcome.status not in (0x0000, 0xB000) and outcome.status not in _PENDING:
            raise DicomTransferFailed(
                f"{self.source.describe()} could not perform the retrieval "
                f"(status 0x{outcome.status:04X})"
            )
        return outcome


def _add_return_key(query: Dataset, ref: TagRef) -> None:
    if ref.private:
        raise ConfigError(
            f"the selection rule's element {ref.key} is private: a DICOM node cannot be "
            "queried on it",
            hint="Select on a study-level element (AccessionNumber, StudyID ...) or a flag file.",
        )
    if ref.keyword:
        setattr(query, ref.keyword, "")
    else:
        tag = Tag(ref.group, ref.element)
        query.add_new(tag, dictionary_VR(tag), "")


def _study(ds: Dataset, tags: Sequence[TagRef]) -> StudyMatch:
    values = {k: TagRef(keyword=k).value_in(ds) for k in _STUDY_KEYS}
    values.update({ref.key: ref.value_in(ds) for ref in tags})
    count = values.get("NumberOfStudyRelatedInstances", "")
    return StudyMatch(values, int(count) if count.isdigit() else None)


def _storage_contexts(classes: list[str]) -> tuple[list[PresentationContext], list[Any]]:
    """Storage contexts with us as SCP (C-GET sub-operations), one per transfer syntax group.

    A context per encoded syntax lets the node send each instance as it is stored, rather
    than transcode it. Without known classes, pynetdicom's standard list is offered.
    """
    if not classes:
        fallback = [str(cx.abstract_syntax) for cx in StoragePresentationContexts]
        contexts = [build_context(uid, _NATIVE) for uid in fallback[: _MAX_CONTEXTS - 1]]
        return contexts, [build_role(uid, scp_role=True) for uid in fallback[: len(contexts)]]
    per_class = 1 + len(_ENCODED)
    room = (_MAX_CONTEXTS - 1) // per_class
    contexts = []
    for uid in classes[:room]:
        contexts.append(build_context(uid, _NATIVE))
        contexts.extend(build_context(uid, syntax) for syntax in _ENCODED)
    for uid in classes[room:]:
        if len(contexts) < _MAX_CONTEXTS - 1:
            contexts.append(build_context(uid, _NATIVE))
    return contexts, [build_role(uid, scp_role=True) for uid in classes]
