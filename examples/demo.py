"""End-to-end demo on the embedded default: clinic terminal -> courier drive -> center archive.

Run by `make demo`. Everything happens in a scratch workspace (default ``./demo-workspace``,
recreated each run) through the real `courier` and `center` commands, with passphrases passed
through files as an automated setup would.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from examples.clinic_terminal import TerminalSpec, generate_terminal


def run(env: dict[str, str], *args: str) -> None:
    print(f"\n$ {' '.join(args)}", flush=True)
    subprocess.run(args, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", type=Path, default=Path("demo-workspace"))
    parser.add_argument(
        "--bin",
        type=Path,
        default=Path(sys.executable).parent,
        help="Folder holding the courier and center commands.",
    )
    args = parser.parse_args(argv)
    ws: Path = args.workspace.resolve()
    if ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    secrets_dir = ws / "secrets"
    secrets_dir.mkdir(mode=0o700)
    env = dict(os.environ)
    for name in ("CENTER", "CENTER_ESCROW", "CENTER_OPERATOR", "COURIER"):
        path = secrets_dir / f"{name.lower()}.pass"
        path.write_text(secrets.token_urlsafe(18))
        env[f"{name}_PASSPHRASE_FILE"] = str(path)
    env["COURIER_HOME"] = str(ws / "laptop")
    env["CENTER_ARCHIVE"] = str(ws / "archive")
    env["CENTER_OPERATOR"] = "Demo Operator"
    env.setdefault("COLUMNS", "120")
    courier, center = str(args.bin / "courier"), str(args.bin / "center")

    terminal = ws / "clinic-terminal"
    manifest = generate_terminal(terminal, TerminalSpec(seed=7, patients=5, studies=10))
    print(
        f"Synthetic clinic terminal: {terminal} ({len(manifest.studies)} studies, "
        f"{len(manifest.a_studies)} flagged A, {manifest.total_bytes:,} bytes)"
    )

    run(
        env,
        center,
        "init",
        str(ws / "archive"),
        "--name",
        "Demo Storage Center",
        "--admin",
        "Demo Operator",
    )
    run(
        env,
        courier,
        "init",
        "--operator",
        "Field Operator",
        "--center-card",
        str(ws / "archive" / "center-card.json"),
    )
    run(env, center, "courier", "enroll", str(ws / "laptop" / "device-card.json"))
    drive = ws / "usb-drive"
    drive.mkdir()
    run(env, courier, "drive", "init", str(drive))
    run(
        env,
        courier,
        "pull",
        "demo-clinic",
        "--source",
        str(terminal),
        "--drive",
        str(drive),
        "--receipts",
        str(ws / "clinic-receipts"),
    )
    run(env, center, "import", str(drive))
    run(env, center, "search", "--facility", "demo-clinic")
    run(
        env,
        center,
        "export",
        "--facility",
        "demo-clinic",
        "--to",
        str(ws / "export-cd"),
        "--purpose",
        "demo: images back to the clinic",
    )
    print(f"\nReception receipt (left at the clinic): {ws / 'clinic-receipts'}")
    print(f"Storage receipts (archive copy): {ws / 'archive' / 'receipts' / 'demo-clinic'}")
    print(
        f"Storage receipts for delivery (encrypted, on the drive): "
        f"{drive / 'outbox' / 'demo-clinic'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
