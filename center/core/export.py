"""Output of archived studies (issue 6, `center export`): to a folder, encrypted, or to a PACS.

The studies matching a query (:mod:`center.core.search`) leave the archive in one of three ways:

* **folder**: a DICOM File-set with its DICOMDIR (:mod:`center.core.fileset`), a printable
  ``index.html`` and a ``SHA256SUMS`` file, ready to burn or hand over. It is built beside the
  destination under a temporary name and renamed into place when complete and verified.
* **encrypted**: the same file-set as one ``.tar.age`` file age-encrypted to a recipient
  (readable with the stock ``age`` CLI: ``age -d -i key.txt x.tar.age | tar x``). The plain
  file-set is built in the archive's own ``tmp/`` (the archive's disk already holds the
  objects in plain) and removed afterwards: nothing unencrypted reaches the destination.
* **pacs**: C-STORE of each instance over one association (:mod:`center.core.pacs`).

Every object's sha256 is checked against the catalog as it is read for output (and an object
that fails stops the whole export). Every export, successful or not, is recorded in the audit
log (PS3.15 event 110106 Export) with operator, purpose, destination, the request it fulfils,
and what was sent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from center.core import audit
from center.core.exportcopy import SetMember, copy_verified, remove_tree
from center.core.exportindex import ExportedStudy, summarize, write_index
from center.core.pacs import PacsAddress, parse_address, store_session
from center.core.search import StudyQuery, matching_study_pks
from center.core.studyref import patient_label, study_label
from center.core.tarage import encrypt_tree
from common.crypto import check_recipient
from common.errors import ArchiveError, ExportError, NothingToExport, QueryInvalid
from common.fsio import fsync_dir
from common.progress import NoProgress, Progress
from common.sqlitedb import transaction

if TYPE_CHECKING:
    from center.core.archive import Archive


@dataclass(frozen=True)
class ExportItem:
    """One instance to output, with the accompanying information the index shows."""

    member: SetMember
    transfer_syntax_uid: str
    study: dict[str, str]


@dataclass(frozen=True)
class Destination:
    """Where an export goes: a folder, an encrypted file in a folder, or a PACS."""

    kind: str  # folder | encrypted | pacs
    folder: Path | None = None
    recipient: str | None = None
    pacs: PacsAddress | None = None

    def describe(self) -> str:
        if self.kind == "pacs":
            return f"pacs:{self.pacs}"
        if self.kind == "encrypted":
            return f"age:{self.folder} (to {self.recipient})"
        return f"folder:{self.folder}"


def destination(*, to: Path | None, encrypt_to: str | None, to_pacs: str | None) -> Destination:
    """The destination from the command's options; QueryInvalid for an impossible combination."""
    if (to is None) == (to_pacs is None):
        raise QueryInvalid("give exactly one destination: --to DIR or --to-pacs AET@host:port")
    if to_pacs is not None:
        if encrypt_to:
            raise QueryInvalid("--encrypt-to applies to --to DIR, not to --to-pacs")
        return Destination("pacs", pacs=parse_address(to_pacs))
    if encrypt_to:
        try:
            recipient = check_recipient(encrypt_to.strip())
        except ValueError as exc:
            raise QueryInvalid(
                f"--encrypt-to {encrypt_to!r} is not an age recipient (age1...)"
            ) from exc
        return Destination("encrypted", folder=to, recipient=recipient)
    return Destination("folder", folder=to)


@dataclass
class ExportReport:
    export_id: str
    destination: str
    purpose: str
    operator: str
    at: str
    request_id: str | None = None
    output: Path | None = None
    studies: list[ExportedStudy] = field(default_factory=list)
    instances: int = 0
    bytes: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)


def select_items(
    archive: Archive, query: StudyQuery
) -> tuple[list[ExportItem], list[dict[str, str]]]:
    """The instances of the matching studies, and those left out (a second version of an
    instance, i.e. the same SOP Instance UID with other bytes: a file-set holds one)."""
    pks = matching_study_pks(archive.conn, query)
    rows = archive.conn.execute(
        "SELECT st.facility_id, st.study_instance_uid, st.accession, st.study_date, "
        "st.description, st.modalities, p.patient_id, p.patient_name, p.birth_date, "
        "i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, i.sha256, i.size "
        "FROM studies st JOIN patients p ON p.patient_pk = st.patient_pk "
        "JOIN series se ON se.study_pk = st.study_pk "
        "JOIN instances i ON i.series_pk = se.series_pk "
        "WHERE st.study_pk IN (SELECT value FROM json_each(?)) "
        "ORDER BY st.study_date, st.study_pk, se.series_pk, i.instance_pk",
        (f"[{','.join(str(pk) for pk in pks)}]",),
    ).fetchall()
    items: list[ExportItem] = []
    skipped: list[dict[str, str]] = []
    seen: set[str] = set()
    study_keys = (
        "facility_id",
        "study_instance_uid",
        "accession",
        "study_date",
        "description",
        "modalities",
        "patient_id",
        "patient_name",
        "birth_date",
    )
    for r in rows:
        uid = str(r["sop_instance_uid"])
        if uid in seen:
            skipped.append(
                {
                    "item": f"instance {str(r['sha256'])[:12]}",
                    "reason": "a second version of "
                    "an instance already exported (same SOP Instance UID, other bytes)",
                }
            )
            continue
        seen.add(uid)
        items.append(
            ExportItem(
                SetMember(uid, str(r["sop_class_uid"]), str(r["sha256"]), int(r["size"])),
                str(r["transfer_syntax_uid"]),
                {key: str(r[key]) for key in study_keys},
            )
        )
    return items, skipped


def export_studies(
    archive: Archive,
    query: StudyQuery,
    *,
    to: Destination,
    purpose: str,
    operator: str,
    now: datetime,
    request_id: str | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Export the studies matching *query* to *to*, recorded in the audit log.

    Refuses an empty query (it would be the whole archive), an empty purpose and a query
    matching nothing. On any failure, what was already sent is audited and the error raised.
    """
    progress = progress or NoProgress()
    if query.is_empty():
        raise QueryInvalid("an export needs at least one criterion (it would be every study)")
    if not purpose.strip():
        raise QueryInvalid("an export needs a --purpose: it is recorded in the audit log")
    sweep_work_folders(archive.paths.tmp, now)
    items, skipped = select_items(archive, query)
    if not items:
        # Criteria are named, not quoted: their values may be patient data.
        named = ", ".join(sorted(query.criteria()))
        raise NothingToExport(f"no study matches the criteria given ({named})")
    report = ExportReport(
        export_id=f"export-{now:%Y%m%d}-{secrets.token_hex(3)}",
        destination=to.describe(),
        purpose=purpose.strip(),
        operator=operator,
        at=now.isoformat(timespec="seconds"),
        request_id=request_id,
        skipped=skipped,
    )
    sent: list[ExportItem] = []
    try:
        if to.pacs is not None:
            _to_pacs(archive, items, to.pacs, sent, progress)
        elif to.folder is not None:
            report.output = _to_folder(archive, items, to.folder, to.recipient, report, progress)
            sent.extend(items)
    except ArchiveError as exc:
        _audit(archive, report, query, sent, now, outcome="failed", error=exc.ref)
        raise
    _audit(archive, report, query, sent, now, outcome="success")
    return report


def _audit(
    archive: Archive,
    report: ExportReport,
    query: StudyQuery,
    sent: list[ExportItem],
    now: datetime,
    *,
    outcome: str,
    error: str = "",
) -> None:
    report.studies = summarize(sent)
    report.instances = len(sent)
    report.bytes = sum(i.member.size for i in sent)
    details: dict[str, Any] = {
        "export_id": report.export_id,
        "purpose": report.purpose,
        "destination": report.destination,
        "request_id": report.request_id,
        "criteria": query.audit_criteria(),
        "studies": [
            [study_label(s.facility_id, s.study_instance_uid), s.instances] for s in report.studies
        ],
        "patients": sorted({patient_label(s.facility_id, s.patient_id) for s in report.studies}),
        "instances": report.instances,
        "bytes": report.bytes,
        "output": str(report.output) if report.output else None,
        "skipped": report.skipped,
    }
    if error:
        details["error"] = error
    with transaction(archive.conn):
        audit.record(
            archive.conn,
            at=now,
            operator=report.operator,
            action="export",
            event_code=audit.EVENT_EXPORT,
            target=report.destination,
            outcome=outcome,
            details=details,
        )


def _to_pacs(
    archive: Archive,
    items: list[ExportItem],
    address: PacsAddress,
    sent: list[ExportItem],
    progress: Progress,
) -> None:
    contexts = {(i.member.sop_class_uid, i.transfer_syntax_uid) for i in items}
    # Every object is copied (and checked) into a work folder of this export before the first
    # is sent: an object that fails its check stops the export with nothing sent, and what is
    # sent is exactly what was checked.
    work = archive.paths.tmp / f".export-{secrets.token_hex(6)}.partial"
    work.mkdir(mode=0o700)
    try:
        progress.phase("verify", len(items), unit="instances")
        staged = []
        for number, item in enumerate(items):
            checked = work / f"{number:07d}.dcm"
            with checked.open("wb") as fh:
                copy_verified(archive.store, item.member, fh)
            staged.append((item, checked))
            progress.advance(1, nbytes=item.member.size)
        progress.phase(f"send to {address}", len(items), unit="instances")
        with store_session(address, contexts) as session:
            for item, checked in staged:
                session.send(checked, what=f"instance {item.member.sha256[:12]}")
                sent.append(item)
                checked.unlink()
                progress.advance(1, nbytes=item.member.size)
    finally:
        remove_tree(work)


STALE_AFTER = timedelta(days=1)


def sweep_work_folders(tmp: Path, now: datetime) -> int:
    """Remove work folders of exports interrupted more than a day ago; return how many.

    A killed export leaves its ``.export-*.partial`` folder (and pydicom's ``fileset-stage-*``)
    in the archive's ``tmp/``. Younger ones may belong to an export still running.
    """
    removed = 0
    for path in [*tmp.glob(".export-*.partial"), *tmp.glob("fileset-stage-*")]:
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=now.tzinfo)
        if path.is_dir() and now - modified > STALE_AFTER:
            remove_tree(path)
            removed += 1
    return removed


def _empty_folder(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ExportError(f"{folder} exists and is not an empty folder; nothing was written")


def _to_folder(
    archive: Archive,
    items: list[ExportItem],
    folder: Path,
    recipient: str | None,
    report: ExportReport,
    progress: Progress,
) -> Path:
    """Write the file-set into *folder*, or as one .tar.age file there when *recipient*."""
    folder = folder.absolute()
    encrypted = recipient is not None
    target = folder / f"{report.export_id}.tar.age" if encrypted else folder
    partial = f".{report.export_id}.partial"
    if encrypted:
        # The plain file-set goes to the archive's own tmp/: nothing unencrypted reaches the
        # destination.
        folder.mkdir(parents=True, exist_ok=True)
        work = archive.paths.tmp / partial
    elif folder.exists():
        # An empty folder (perhaps the root of a removable drive, a mount point): build inside
        # it, then move the finished entries up.
        _empty_folder(folder)
        work = folder / partial
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = folder.parent / partial
    try:
        work.mkdir(mode=0o700)
        progress.phase("verify and copy", len(items), unit="instances")
        from center.core.fileset import write_fileset  # pydicom: only when a set is written

        paths = write_fileset(
            work,
            [i.member for i in items],
            archive.store,
            stage_folder=archive.paths.tmp,
            fileset_id=report.export_id.replace("-", "")[-16:],
            on_member=lambda n: progress.advance(1, nbytes=n),
        )
        write_index(work, report, items, paths)
        if recipient is not None:
            progress.phase("encrypt", None, unit="bytes")
            encrypt_tree(work, target, recipient, report.export_id)
        elif work.parent == folder:
            # DICOMDIR last: a reader finds no file-set until every file is in place.
            for entry in sorted(work.iterdir(), key=lambda e: e.name == "DICOMDIR"):
                entry.rename(folder / entry.name)
            fsync_dir(folder)
        else:
            work.rename(folder)
            fsync_dir(folder.parent)
    except OSError as exc:
        raise ExportError(f"writing the export to {folder} failed: {exc.strerror or exc}") from exc
    finally:
        remove_tree(work)
    return target
