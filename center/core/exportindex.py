"""The printable ``index.html`` and the ``SHA256SUMS`` of an exported file-set.

The page lists, per study, the patient, date, modality, accession, description, number of
instances and the folder of the file-set that holds it, with the export's id, date, operator,
purpose and the request it fulfils. It is self-contained (no scripts, no external resources)
and prints on A4 or Letter. ``SHA256SUMS`` lets the recipient check the copy with
``sha256sum -c SHA256SUMS``.
"""

from __future__ import annotations

import html
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from center.core.exportcopy import SetMember


class _Item(Protocol):
    @property
    def member(self) -> SetMember: ...

    @property
    def study(self) -> dict[str, str]: ...


class _Report(Protocol):
    export_id: str
    at: str
    operator: str
    purpose: str
    request_id: str | None


@dataclass(frozen=True)
class ExportedStudy:
    facility_id: str
    study_instance_uid: str
    accession: str
    study_date: str
    modalities: str
    description: str
    patient_id: str
    patient_name: str
    birth_date: str
    instances: int
    bytes: int


def summarize(items: Sequence[_Item]) -> list[ExportedStudy]:
    """One entry per study of *items*, in the order first met."""
    order: list[str] = []
    counts: dict[str, list[int]] = {}
    first: dict[str, dict[str, str]] = {}
    for item in items:
        uid = item.study["study_instance_uid"]
        if uid not in counts:
            order.append(uid)
            counts[uid] = [0, 0]
            first[uid] = item.study
        counts[uid][0] += 1
        counts[uid][1] += item.member.size
    return [
        ExportedStudy(
            **{k: first[uid][k] for k in first[uid]},
            instances=counts[uid][0],
            bytes=counts[uid][1],
        )
        for uid in order
    ]


def _date(value: str) -> str:
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def _name(pn: str) -> str:
    """A PN value as people read it: ``Family, Given Middle`` per group, groups joined."""
    groups = []
    for group in pn.split("="):
        parts = group.split("^")
        family, given = parts[0], " ".join(p for p in parts[1:3] if p)
        groups.append(f"{family}, {given}" if family and given else family or given)
    return " / ".join(g for g in groups if g)


_STYLE = """
body{font-family:sans-serif;margin:2em;color:#111}
table{border-collapse:collapse;width:100%;font-size:10pt}
th,td{border:1px solid #999;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eee} .meta td{border:none;padding:1px 8px 1px 0}
@media print{body{margin:1cm}}
"""


def _folder(paths: list[str]) -> str:
    """The study's folder: the first two levels (patient, study) of pydicom's layout."""
    return posixpath.join(*paths[0].split("/")[:2]) if paths else ""


def render_html(report: _Report, studies: list[ExportedStudy], folders: dict[str, str]) -> str:
    e = html.escape
    meta = [
        ("Export", report.export_id),
        ("Date", report.at),
        ("Exported by", report.operator),
        ("Purpose", report.purpose),
    ]
    if report.request_id:
        meta.append(("Output request", report.request_id))
    meta.append(
        ("Contents", f"{len(studies)} studies, {sum(s.instances for s in studies)} instances")
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(v)}</td>"
            for v in (
                _name(s.patient_name),
                s.patient_id,
                _date(s.birth_date),
                _date(s.study_date),
                s.modalities,
                s.accession,
                s.description,
                str(s.instances),
                folders.get(s.study_instance_uid, ""),
            )
        )
        + "</tr>\n"
        for s in studies
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Patient",
            "Patient ID",
            "Birth date",
            "Study date",
            "Modality",
            "Accession",
            "Description",
            "Instances",
            "Folder",
        )
    )
    meta_rows = "".join(f"<tr><td><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in meta)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(report.export_id)}</title><style>{_STYLE}</style></head><body>\n"
        f'<h1>Image export</h1>\n<table class="meta">{meta_rows}</table>\n'
        "<p>Open <code>DICOMDIR</code> with a DICOM viewer. Check the copy with "
        "<code>sha256sum -c SHA256SUMS</code>.</p>\n"
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table>\n"
        "</body></html>\n"
    )


def write_index(root: Path, report: _Report, items: Sequence[_Item], paths: dict[str, str]) -> None:
    """Write ``index.html`` and ``SHA256SUMS`` beside the DICOMDIR in *root*."""
    by_study: dict[str, list[str]] = {}
    for item in items:
        by_study.setdefault(item.study["study_instance_uid"], []).append(
            paths[item.member.sop_instance_uid]
        )
    folders = {uid: _folder(files) for uid, files in by_study.items()}
    sums = "".join(
        f"{item.member.sha256}  {paths[item.member.sop_instance_uid]}\n" for item in items
    )
    # *root* is the export's own work folder, renamed or encrypted as a whole once complete:
    # plain writes are enough here, fsynced before that.
    for name, text in (
        ("index.html", render_html(report, summarize(items), folders)),
        ("SHA256SUMS", sums),
    ):
        with (root / name).open("wb") as fh:
            fh.write(text.encode())
            fh.flush()
            os.fsync(fh.fileno())
