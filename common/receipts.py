"""Receipts for the clinic (DESIGN.md s9): a printable HTML page and a signed canonical JSON.

A *reception receipt* is left at the clinic by the courier (signed by the device); a *storage
receipt* is written by the center after import (signed by the center) and delivered on the next
visit. Both list each study: accession, date, modality, instance count, bytes and the sha256 of
its instance list; the storage receipt adds each study's expiry date. A receipt never lists more
than was verified: callers pass only instances that really were copied or stored.

Files: ``<id>.json`` (canonical JSON), ``<id>.json.sig`` (base64 Ed25519 signature of
:data:`SIGNATURE_CONTEXT` + the JSON bytes) and ``<id>.html`` (self-contained, no scripts).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.canonical import canonical_json
from common.crypto import fingerprint, sign, verify_signature
from common.dicomhdr import InstanceHeader
from common.fsio import atomic_write

RECEIPT_VERSION = 1
SIGNATURE_CONTEXT = b"clinic-archive receipt v1\0"


@dataclass(frozen=True)
class ReceivedInstance:
    header: InstanceHeader
    sha256: str
    size: int


def instance_list_sha256(items: Iterable[tuple[str, str]]) -> str:
    """sha256 of the sorted ``<SOP Instance UID> <sha256>\\n`` lines of a study's instances."""
    lines = sorted(f"{uid} {digest}\n" for uid, digest in items)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def summarize_studies(instances: Iterable[ReceivedInstance]) -> list[dict[str, Any]]:
    """One receipt row per study, sorted by study date then accession.

    Streaming: of each instance only its (SOP Instance UID, sha256) pair is kept, so a receipt
    of 100,000 instances does not hold 100,000 headers.
    """
    groups: dict[str, _StudyTotals] = {}
    for item in instances:
        header = item.header
        totals = groups.get(header.study_instance_uid)
        if totals is None:
            totals = groups[header.study_instance_uid] = _StudyTotals(header)
        if header.modality:
            totals.modalities.add(header.modality)
        totals.bytes += item.size
        totals.pairs.append((header.sop_instance_uid, item.sha256))
    rows = [
        {
            "study_instance_uid": study_uid,
            "accession": t.first.accession,
            "study_date": t.first.study_date,
            "modality": "/".join(sorted(t.modalities)),
            "description": t.first.study_description,
            "instances": len(t.pairs),
            "bytes": t.bytes,
            "instance_list_sha256": instance_list_sha256(t.pairs),
        }
        for study_uid, t in groups.items()
    ]
    return sorted(rows, key=lambda r: (r["study_date"], r["accession"]))


class _StudyTotals:
    """What a receipt row needs of one study's instances."""

    def __init__(self, first: InstanceHeader) -> None:
        self.first = first
        self.modalities: set[str] = set()
        self.bytes = 0
        self.pairs: list[tuple[str, str]] = []


def reception_receipt(
    *,
    bundle_id: str,
    facility_id: str,
    issued: str,
    issuer_info: dict[str, str],
    received: Iterable[ReceivedInstance],
    skipped: list[dict[str, str]],
    changed: list[dict[str, str]],
    visit: dict[str, Any],
    warnings: list[str],
) -> dict[str, Any]:
    """The reception receipt the courier leaves at the clinic (DESIGN.md s9). Pure.

    *received* are the instances sealed in the bundle (read back from the drive), *skipped*
    the terminal's files that were not usable DICOM (``{item, reason}``), *changed* the files
    whose instance was carried before with other bytes (``{item, reason}``), *visit* the
    visit's counts and the terminal's capacity figures (``rule``, ``files_seen``,
    ``not_selected``, ``already_carried``, ``capacity``), *warnings* what the clinic must act on.
    """
    studies = summarize_studies(received)
    return {
        "kind": "reception-receipt",
        "version": RECEIPT_VERSION,
        "receipt_id": f"reception-{bundle_id}",
        "issued": issued,
        "facility_id": facility_id,
        "bundle_id": bundle_id,
        "issuer": issuer_info,
        "studies": studies,
        "totals": {
            "studies": len(studies),
            "instances": sum(int(s["instances"]) for s in studies),
            "bytes": sum(int(s["bytes"]) for s in studies),
        },
        "skipped": skipped,
        "changed": changed,
        "visit": visit,
        "warnings": warnings,
    }


@dataclass(frozen=True)
class ReceiptFiles:
    json: Path
    signature: Path
    html: Path


def receipt_bytes(document: dict[str, Any], signing_seed: bytes, *, title: str) -> dict[str, bytes]:
    """The three files of a signed receipt by suffix: ``.json``, ``.json.sig``, ``.html``."""
    body = canonical_json(document)
    signature = sign(signing_seed, SIGNATURE_CONTEXT + body)
    return {
        ".json": body,
        ".json.sig": base64.b64encode(signature) + b"\n",
        ".html": render_html(document, title=title).encode(),
    }


def write_receipt(
    folder: Path, document: dict[str, Any], signing_seed: bytes, *, title: str
) -> ReceiptFiles:
    """Sign *document* and write its three files atomically into *folder*."""
    folder.mkdir(parents=True, exist_ok=True)
    data = receipt_bytes(document, signing_seed, title=title)
    stem = folder / str(document["receipt_id"])
    files = ReceiptFiles(Path(f"{stem}.json"), Path(f"{stem}.json.sig"), Path(f"{stem}.html"))
    atomic_write(files.json, data[".json"])
    atomic_write(files.signature, data[".json.sig"])
    atomic_write(files.html, data[".html"])
    return files


def verify_receipt(json_bytes: bytes, sig_bytes: bytes, public: bytes) -> bool:
    """True when the receipt JSON is exactly what *public*'s holder signed."""
    try:
        signature = base64.b64decode(sig_bytes.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return verify_signature(public, SIGNATURE_CONTEXT + json_bytes, signature)


def load_receipt(json_bytes: bytes) -> dict[str, Any]:
    doc = json.loads(json_bytes)
    if not isinstance(doc, dict):
        raise ValueError("a receipt is a JSON object")
    return doc


def signer_public(document: dict[str, Any]) -> bytes:
    return base64.b64decode(document["issuer"]["public_key"], validate=True)


def issuer(kind: str, name: str, public: bytes, **extra: str) -> dict[str, str]:
    return {
        "kind": kind,
        "name": name,
        "public_key": base64.b64encode(public).decode(),
        "fingerprint": fingerprint(public),
        **extra,
    }


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#111}
h1{font-size:1.5em;margin-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:1em 0;font-size:.95em}
th,td{border:1px solid #999;padding:.3em .5em;text-align:left}
th{background:#eee}
td.n{text-align:right}
.meta td:first-child{font-weight:600;width:14em}
.fp{font-family:monospace;font-size:1.1em}
.warn{border:2px solid #b00;padding:.5em;color:#b00;font-weight:600}
@media print{body{margin:0}}
"""


def _cell(value: Any) -> str:
    return html.escape(str(value))


def _fmt_date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:]}" if len(value) == 8 and value.isdigit() else value


def render_html(doc: dict[str, Any], *, title: str) -> str:
    """A self-contained printable page (inline CSS, no scripts, no external resources)."""
    who = doc["issuer"]
    meta = [
        ("Receipt", doc["receipt_id"]),
        ("Issued", doc["issued"]),
        ("Facility", doc["facility_id"]),
        ("Issued by", f"{who['name']} ({who['kind']})"),
        ("Bundle", doc.get("bundle_id", "")),
    ]
    meta_rows = "".join(f"<tr><td>{_cell(k)}</td><td>{_cell(v)}</td></tr>" for k, v in meta if v)
    has_expiry = any("expiry" in s for s in doc["studies"])
    head = "<th>Accession</th><th>Study date</th><th>Modality</th><th>Description</th>"
    head += "<th>Instances</th><th>Bytes</th>" + ("<th>Kept until</th>" if has_expiry else "")
    rows = []
    for study in doc["studies"]:
        cells = [
            _cell(study["accession"]),
            _cell(_fmt_date(study["study_date"])),
            _cell(study["modality"]),
            _cell(study.get("description", "")),
        ]
        row = "".join(f"<td>{c}</td>" for c in cells)
        # A storage receipt lists its instances (contract C3) and counts them apart.
        count = study.get("instance_count", study["instances"])
        row += f'<td class="n">{count}</td><td class="n">{study["bytes"]:,}</td>'
        if has_expiry:
            row += f"<td>{_cell(study.get('expiry', ''))}</td>"
        rows.append(f"<tr>{row}</tr>")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_cell(title)} {_cell(doc['receipt_id'])}</title><style>{_CSS}</style></head>",
        f"<body><h1>{_cell(title)}</h1>",
        f'<table class="meta">{meta_rows}</table>',
    ]
    for warning in doc.get("warnings", []):
        parts.append(f'<p class="warn">{_cell(warning)}</p>')
    totals = doc["totals"]
    parts.append(
        f"<h2>Studies ({totals['studies']} studies, {totals['instances']} instances, "
        f"{totals['bytes']:,} bytes)</h2>"
    )
    parts.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    parts.extend(_visit_html(doc))
    not_done = doc.get("skipped", []) + doc.get("not_stored", [])
    if not_done:
        parts.append(f"<h2>Not included ({len(not_done)})</h2><table>")
        parts.append("<tr><th>Item</th><th>Reason</th></tr>")
        for item in not_done:
            parts.append(f"<tr><td>{_cell(item['item'])}</td><td>{_cell(item['reason'])}</td></tr>")
        parts.append("</table>")
    if doc.get("changed"):
        parts.append(f"<h2>Taken again because they changed ({len(doc['changed'])})</h2><table>")
        parts.append("<tr><th>Item</th><th>Note</th></tr>")
        for item in doc["changed"]:
            parts.append(f"<tr><td>{_cell(item['item'])}</td><td>{_cell(item['reason'])}</td></tr>")
        parts.append("</table>")
    if "audit_checkpoint" in doc:
        cp = doc["audit_checkpoint"]
        parts.append(
            f"<p>Center audit checkpoint: entry {cp['seq']}, hash "
            f'<span class="fp">{_cell(cp["hash"])}</span></p>'
        )
    parts.append(
        f'<p>Signed by key fingerprint <span class="fp">{_cell(who["fingerprint"])}</span>. '
        "The file with the same name ending in <code>.json</code> is the signed record; "
        "this page is a readable copy.</p></body></html>"
    )
    return "\n".join(parts) + "\n"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000:
            return f"{n:,} bytes" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} TB"


def _visit_html(doc: dict[str, Any]) -> list[str]:
    """The reception receipt's visit figures: selection, counts and the terminal's capacity."""
    visit = doc.get("visit")
    if not isinstance(visit, dict):
        return []
    rows = [
        ("Selection rule", visit.get("rule", "")),
        ("Files examined on the terminal", visit.get("files_seen", "")),
        ("Not flagged for archiving (kept here)", visit.get("not_selected", "")),
        ("Already carried on an earlier visit", visit.get("already_carried", "")),
    ]
    capacity = visit.get("capacity")
    if isinstance(capacity, dict):
        rows += [
            ("Terminal capacity", _size(int(capacity["total_bytes"]))),
            ("Used", _size(int(capacity["used_bytes"]))),
            ("Free", _size(int(capacity["free_bytes"]))),
            ("DICOM data on the terminal", _size(int(capacity["dicom_bytes"]))),
            (
                "Warning threshold",
                f"{_size(int(capacity['threshold_bytes']))} ({capacity['threshold_rule']})",
            ),
        ]
    body = "".join(f"<tr><td>{_cell(k)}</td><td>{_cell(v)}</td></tr>" for k, v in rows if v != "")
    return [f'<h2>This visit</h2><table class="meta">{body}</table>']
