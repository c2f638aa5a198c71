"""A reception receipt prints: headless Chromium renders it to a PDF listing the studies."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from courier.core.device import UnlockedDevice
from courier.core.drive import Drive
from courier.core.pull import pull
from tests.conftest import NOW, Terminal, require_tool
from tests.courier.conftest import settings

pytestmark = pytest.mark.peer


def _print_to_pdf(html: Path, pdf: Path, profile: Path) -> None:
    chromium = require_tool("chromium")
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            html.as_uri(),
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )


def test_reception_receipt_prints_with_its_studies(
    device: UnlockedDevice, drive: Drive, terminal: Terminal, tmp_path: Path
) -> None:
    """The PDF Chromium prints from the receipt's HTML names every A study's accession."""
    pdftotext = require_tool("pdftotext")
    receipts = tmp_path / "receipts"
    result = pull(device, settings=settings(terminal.root, receipts=receipts), drive=drive, now=NOW)
    assert result.receipt is not None and result.receipt.files is not None
    pdf = tmp_path / "receipt.pdf"
    _print_to_pdf(result.receipt.files.html, pdf, tmp_path / "chromium-profile")
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(
        [pdftotext, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Reception receipt" in text
    for study in terminal.manifest.a_studies:
        assert study.accession in text
    for study in terminal.manifest.b_studies:
        assert study.accession not in text
    assert device.device.operator in text
