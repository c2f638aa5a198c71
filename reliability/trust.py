"""Scenario 6, trust: what does not come from whom it claims is refused or detected.

One world: a center, three courier devices A and B (enrolled) and U (never enrolled), R (enrolled,
then revoked), another center elsewhere; A, U and R each pulled the same terminal onto their own
drive, and the center imported A's drive. Each case copies what it needs and runs the real CLIs:

* a bundle from the unenrolled device U; one from the revoked device R;
* A's bundle re-signed by the enrolled device B (bag-info rewritten to B), and re-signed by U
  while still claiming to be A's;
* a storage receipt with an altered study list: `center receipt verify` of the edited copy, and
  the courier delivering an altered document (re-encrypted to A, which anyone can do);
* a document for the clinic signed by another center, in the drive's outbox;
* a delivery confirmation forged by U, and one by B claiming to be A's;
* an audit log with a rewritten entry, naively and with the hash chain recomputed after it;
* the center card swapped on the courier's laptop.

Each must end in a domain error (never a crash), store nothing, and leave a security alert
(PS3.15 110113) in the audit log where the center sees it.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from center.core import audit as audit_module
from center.core.archive import open_archive
from common.bundle import format as fmt
from common.canonical import canonical_json
from common.crypto import decrypt_bytes, encrypt_bytes, fingerprint, recipient_of, sign
from common.errors import ALL_ERRORS
from common.receipts import SIGNATURE_CONTEXT, receipt_bytes
from courier.core.device import CourierHome, UnlockedDevice, load_device, unlock
from reliability import oracle
from reliability.harness import Row, RunContext, TrialResult, timed
from reliability.world import (
    CENTER_PASS,
    COURIER_PASS,
    SECOND_SPEC,
    Case,
    Done,
    cli_env,
    copy_tree,
    make_center,
    make_device,
    make_terminal,
    pull_args,
)
from tests.center.intake.kit import resign

DOMAIN_EXITS = {cls.exit_code for cls in ALL_ERRORS}
SECURITY_ALERT = audit_module.EVENT_SECURITY_ALERT


@dataclass
class World:
    base: Path
    center: Path  # archive with A's drive imported
    other_center: Path
    drives: dict[str, Path]  # device name: its drive (A's already imported)
    homes: dict[str, Path]
    keys: dict[str, UnlockedDevice]
    terminal: Path


def _device(home: Path) -> UnlockedDevice:
    return unlock(load_device(CourierHome(home)), COURIER_PASS)


def prepare(base: Path) -> World:
    world = Case(base / "world", cli_env(base / "world"))
    world.root.mkdir(parents=True)
    make_center(world.archive)
    make_center(base / "other-center")
    homes = {name: base / f"home-{name}" for name in ("A", "B", "U", "R")}
    for name, home in homes.items():
        make_device(home, world.archive, operator=f"Courier {name}", enrol=name != "U")
    terminal = make_terminal(base / "terminal", SECOND_SPEC)
    drives = {}
    for name, home in homes.items():
        drive = base / f"drive-{name}"
        drive.mkdir()
        env = cli_env(world.root, {"COURIER_HOME": str(home)})
        case = Case(world.root, env)
        done = case.run(
            "courier", *pull_args("clinic-1", terminal.root, drive, base / f"receipts-{name}")
        )
        if done.returncode != 0:
            raise RuntimeError(f"pull by {name} failed: {done.tail()}")
        drives[name] = drive
    done = world.run("center", "import", str(drives["A"]), "--json")
    if done.returncode != 0:
        raise RuntimeError(f"import of A's drive failed: {done.tail()}")
    keys = {name: _device(home) for name, home in homes.items()}
    return World(base, world.archive, base / "other-center", drives, homes, keys, terminal.root)


@dataclass
class Trial:
    case: Case
    result: TrialResult
    alerts_before: int
    instances_before: int

    def alerts(self) -> int:
        return _count(
            self.case.archive, "SELECT COUNT(*) FROM audit WHERE event_code = ?", SECURITY_ALERT
        )

    def refused(
        self, done: Done, what: str, *, codes: tuple[int, ...] = (), alert: bool = True
    ) -> None:
        """*done* must be a domain error (one of *codes* if given), storing nothing, alerting."""
        self.result.faults += 1
        if done.returncode == 0 or done.returncode not in DOMAIN_EXITS:
            self.result.fail(f"{what}: ended {done.returncode}, not refused: {done.tail()}")
        elif codes and done.returncode not in codes:
            self.result.fail(
                f"{what}: ended {done.returncode}, expected one of {codes}: {done.tail()}"
            )
        if "Traceback" in done.stderr:
            self.result.fail(f"{what}: a traceback")
        if _count(self.case.archive, "SELECT COUNT(*) FROM instances") != self.instances_before:
            self.result.fail(f"{what}: instances were stored")
        if alert and self.alerts() <= self.alerts_before:
            self.result.fail(f"{what}: no security alert (110113) in the audit log")


def _count(archive: Path, sql: str, *args: object) -> int:
    conn = oracle.read_only(archive / "catalog.sqlite")
    try:
        return int(conn.execute(sql, args).fetchone()[0])
    finally:
        conn.close()


def _trial(world: World, root: Path, drive: str = "A", home: str = "A") -> Trial:
    case = Case(root, cli_env(root))
    copy_tree(world.center, case.archive)
    copy_tree(world.drives[drive], case.drive)
    copy_tree(world.homes[home], case.home)
    return Trial(
        case,
        TrialResult("refused"),
        _count(case.archive, "SELECT COUNT(*) FROM audit WHERE event_code = ?", SECURITY_ALERT),
        _count(case.archive, "SELECT COUNT(*) FROM instances"),
    )


def _bundle(case: Case) -> Path:
    return next((case.drive / fmt.BUNDLES_DIR).iterdir())


def unenrolled(world: World, t: Trial) -> None:
    t.case.drive.rename(t.case.root / "drive-A")
    copy_tree(world.drives["U"], t.case.drive)
    t.refused(
        t.case.run("center", "import", str(t.case.drive)),
        "bundle of an unenrolled device",
        codes=(30,),
    )


def revoked(world: World, t: Trial) -> None:
    t.case.drive.rename(t.case.root / "drive-A")
    copy_tree(world.drives["R"], t.case.drive)
    revoke = t.case.run(
        "center", "courier", "revoke", world.keys["R"].device.device_id, "--reason", "stolen"
    )
    if revoke.returncode != 0:
        t.result.fail(f"revoke failed: {revoke.tail()}")
    t.alerts_before = t.alerts()  # the revocation itself is recorded as one
    t.refused(
        t.case.run("center", "import", str(t.case.drive)), "bundle of a revoked device", codes=(31,)
    )


def _fresh_bundle(world: World, t: Trial) -> Path:
    """A's bundle under a new id, so it is not simply 'already imported'."""
    t.case.drive.rename(t.case.root / "drive-imported")
    copy_tree(world.drives["R"], t.case.drive)  # any not-imported bundle: R is enrolled, active
    return _bundle(t.case)


def resigned_by_enrolled(world: World, t: Trial) -> None:
    bundle = _fresh_bundle(world, t)
    b = world.keys["B"]
    resign(bundle, b.signing_seed, bag_info={
        "Courier-Device-Id": b.device.device_id,
        "Courier-Device-Fingerprint": fingerprint(b.device.signing_public),
        "Courier-Device-Public-Key": base64.b64encode(b.device.signing_public).decode(),
    })  # fmt: skip
    t.refused(
        t.case.run("center", "import", str(t.case.drive)),
        "bundle re-signed by another enrolled device",
    )


def resigned_by_outsider(world: World, t: Trial) -> None:
    bundle = _fresh_bundle(world, t)
    resign(bundle, world.keys["U"].signing_seed)
    t.refused(
        t.case.run("center", "import", str(t.case.drive)),
        "bundle re-signed by an outsider",
        codes=(22,),
    )


def altered_receipt(world: World, t: Trial) -> None:
    receipt = next((t.case.archive / "receipts").rglob("storage-*.json"))
    doc = json.loads(receipt.read_bytes())
    doc["studies"] = doc["studies"][1:] or [{**doc["studies"][0], "instance_count": 99}]
    receipt.write_bytes(canonical_json(doc))
    t.refused(
        t.case.run("center", "receipt", "verify", str(receipt)),
        "storage receipt with an altered study list",
        codes=(42,),
    )


def _outbox_document(t: Trial) -> tuple[Path, dict[str, object]]:
    folder = next((t.case.drive / fmt.OUTBOX_DIR).iterdir())
    name = next(folder.glob("*.json.age"))
    doc = json.loads(decrypt_bytes(name.read_bytes(), _device(t.case.home).age_identity))
    return folder, doc


def _put(folder: Path, doc: dict[str, object], seed: bytes, recipient: str) -> None:
    for suffix, data in receipt_bytes(doc, seed, title="Storage receipt").items():
        (folder / f"{doc['receipt_id']}{suffix}.age").write_bytes(encrypt_bytes(data, [recipient]))


def courier_altered_document(world: World, t: Trial) -> None:
    folder, doc = _outbox_document(t)
    doc["studies"] = list(doc["studies"])[1:]  # type: ignore[call-overload]
    body = canonical_json(doc)  # its .json.sig is left as the center signed the original
    recipient = recipient_of(world.keys["A"].age_identity)
    (folder / f"{doc['receipt_id']}.json.age").write_bytes(encrypt_bytes(body, [recipient]))
    _deliver_refused(t, "altered storage receipt delivered by the courier")


def other_center_document(world: World, t: Trial) -> None:
    folder, doc = _outbox_document(t)
    with open_archive(world.other_center) as other:
        seed = other.unlock(CENTER_PASS).signing_seed
    _put(folder, doc, seed, recipient_of(world.keys["A"].age_identity))
    _deliver_refused(t, "document signed by another center")


def _deliver_refused(t: Trial, what: str) -> None:
    receipts = t.case.root / "clinic"
    done = t.case.run(
        "courier",
        "deliver",
        "clinic-1",
        "--drive",
        str(t.case.drive),
        "--receipts",
        str(receipts),
        "--json",
    )
    t.refused(done, what, codes=(61,), alert=False)
    if list(receipts.glob("storage-*")):
        t.result.fail(f"{what}: given to the clinic")


def forged_confirmation(world: World, t: Trial, signer: str) -> None:
    _, doc = _outbox_document(t)
    device = world.keys[signer]
    a = world.keys["A"] if signer == "B" else device  # B impersonates A; U speaks for itself
    confirmation = {
        "kind": "delivery-confirmation", "version": 1, "document_id": doc["receipt_id"],
        "facility_id": "clinic-1", "delivered_at": "2026-11-23T10:00:00+00:00",
        "device_id": a.device.device_id, "device_fingerprint": fingerprint(a.device.signing_public),
        "clinic_path_name": f"{doc['receipt_id']}.json",
    }  # fmt: skip
    body = canonical_json(confirmation)
    folder = t.case.drive / "returns" / "clinic-1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"delivery-{doc['receipt_id']}.json").write_bytes(body)
    sig = base64.b64encode(sign(device.signing_seed, SIGNATURE_CONTEXT + body))
    (folder / f"delivery-{doc['receipt_id']}.json.sig").write_bytes(sig + b"\n")
    done = t.case.run("center", "import", str(t.case.drive), "--json")
    t.result.faults += 1
    if done.returncode not in (0, 41) and done.returncode not in DOMAIN_EXITS:
        t.result.fail(
            f"forged confirmation by {signer}: import ended {done.returncode}: {done.tail()}"
        )
    delivered = _count(
        t.case.archive, "SELECT COUNT(*) FROM outbox_documents WHERE delivered_at IS NOT NULL"
    )
    if delivered:
        t.result.fail(f"forged confirmation by {signer}: the document was marked delivered")
    if t.alerts() <= t.alerts_before:
        t.result.fail(f"forged confirmation by {signer}: no security alert")


def rewritten_audit(world: World, t: Trial, rechain: bool) -> None:
    conn = sqlite3.connect(t.case.archive / "catalog.sqlite")
    with conn:
        seq, details = conn.execute(
            "SELECT seq, details FROM audit ORDER BY seq LIMIT 1 OFFSET 1"
        ).fetchone()
        edited = json.dumps({**json.loads(details), "operator_note": "nothing happened"})
        conn.execute("UPDATE audit SET details = ? WHERE seq = ?", (edited, seq))
        if rechain:
            rows = conn.execute(
                "SELECT * FROM audit WHERE seq >= ? ORDER BY seq", (seq,)
            ).fetchall()
            prev = conn.execute("SELECT hash FROM audit WHERE seq = ?", (seq - 1,)).fetchone()[0]
            for row in rows:
                entry = audit_module.row_entry(cast(sqlite3.Row, _Row(row, conn)))
                digest = audit_module.chain_hash(prev, entry.content())
                conn.execute(
                    "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, row[0])
                )
                prev = digest
    conn.close()
    what = "audit entry rewritten" + (" with the chain recomputed" if rechain else "")
    t.refused(t.case.run("center", "audit", "verify"), what, codes=(43,))
    t.alerts_before = t.alerts()  # `center check` must raise its own alert
    t.refused(t.case.run("center", "check"), f"{what} (center check)", codes=(44,))
    again = t.case.run("center", "audit", "verify")
    if again.returncode != 43:
        t.result.fail(f"{what}: the alerts hid the tampering ({again.returncode})")


class _Row(dict):  # type: ignore[type-arg]
    """A plain row with sqlite3.Row's access by name."""

    def __init__(self, row: tuple[object, ...], conn: sqlite3.Connection) -> None:
        names = [c[1] for c in conn.execute("PRAGMA table_info(audit)")]
        super().__init__(zip(names, row, strict=True))


def swapped_center_card(world: World, t: Trial) -> None:
    (t.case.home / "center-card.json").write_bytes(
        (world.other_center / "center-card.json").read_bytes()
    )
    drive = t.case.root / "empty-drive"
    drive.mkdir()
    done = t.case.run("courier", *pull_args("clinic-1", world.terminal, drive, t.case.root / "r"))
    t.refused(done, "center card swapped on the courier", codes=(7,), alert=False)
    if list(drive.rglob("*.age")):
        t.result.fail("the courier wrote bundles with a swapped center card")


CASES: dict[str, Callable[[World, Trial], None]] = {
    "unenrolled device": unenrolled,
    "revoked device": revoked,
    "re-signed by another enrolled device": resigned_by_enrolled,
    "re-signed by an outsider": resigned_by_outsider,
    "altered storage receipt (center)": altered_receipt,
    "altered storage receipt (courier)": courier_altered_document,
    "document signed by another center": other_center_document,
    "confirmation forged by an outsider": lambda w, t: forged_confirmation(w, t, "U"),
    "confirmation forged by another device": lambda w, t: forged_confirmation(w, t, "B"),
    "audit entry rewritten": lambda w, t: rewritten_audit(w, t, False),
    "audit entry rewritten, chain recomputed": lambda w, t: rewritten_audit(w, t, True),
    "center card swapped on the courier": swapped_center_card,
}


def run(ctx: RunContext) -> Row:
    started = time.monotonic()
    row = Row(
        "6 trust",
        note="refused or detected, with a 110113 alert where the center sees it",
        measures=frozenset(),
    )
    with ctx.folder("trust") as base:
        world = prepare(base / "world")

        def trial(name: str, case: Callable[[World, Trial], None]) -> Callable[[], TrialResult]:
            def go() -> TrialResult:
                with ctx.folder("trust-case") as root:
                    t = _trial(world, root / "case")
                    case(world, t)
                    t.result.outcome = "refused" if not t.result.failures else "accepted"
                    return t.result

            return go

        ctx.run_trials(row, ((name, trial(name, case)) for name, case in CASES.items()))
    return timed(row, started)
