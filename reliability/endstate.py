"""The end-state checks shared by the crash and I/O-fault scenarios.

After the faults, a normal run of the same command must finish the job, and the result must be
what an uninterrupted run gives. :func:`finish_pull` and :func:`finish_import` run that last
command and compare, filling the trial's result (lost, duplicated, failures).
"""

from __future__ import annotations

import json
from pathlib import Path

from common.bundle import format as fmt
from common.bundle.reader import read_reception
from common.receipts import verify_receipt
from courier.core.courierlog import verify_block
from reliability import oracle
from reliability.harness import TrialResult
from reliability.leakscan import Needles, patient_needles, scan_bytes, scan_tree, secret_needles
from reliability.rigs import PARTIAL_EXIT, ImportRig, PullRig
from reliability.world import PASSPHRASES, Case, Done


def rig_needles(rig: PullRig | ImportRig) -> Needles:
    """The terminals' patient data and the secrets (center key, passphrases) of a rig."""
    manifests = [rig.terminal.manifest] if isinstance(rig, PullRig) else rig.manifests
    secrets = secret_needles(identities=[rig.identity], seeds=[], passphrases=PASSPHRASES)
    patients = patient_needles(manifests)
    if not patients.items:
        raise RuntimeError("no patient data to look for: every leak scan would pass")
    return Needles(patients.items + secrets.items)


def no_leaks(
    case: Case, needles: Needles, result: TrialResult, runs: list[Done], *, courier: bool
) -> None:
    """After a trial: nothing of *needles* on the drive, in the courier's state folder, or in any
    command's output (the center's output may list studies for its staff: secrets only)."""
    trees = {"drive": case.drive, "courier home": case.home} if courier else {"drive": case.drive}
    leaks = [
        leak for label, root in trees.items() for leak in scan_tree(root, needles, label=label)
    ]
    screen = needles if courier else needles.secrets()
    for i, done in enumerate(runs):
        leaks += scan_bytes(f"run {i + 1} stderr", done.stderr.encode(), needles)
        leaks += scan_bytes(f"run {i + 1} stdout", done.stdout.encode(), screen)
    result.leaks += len(leaks)
    for leak in leaks[:5]:
        result.fail(leak.describe())


def sealed_bundles_ok(rig: PullRig, case: Case, result: TrialResult) -> oracle.DriveContents:
    """No sealed bundle on the drive may be bad, whatever state the pull was left in."""
    contents = oracle.read_drive(case.drive, rig.identity)
    for problem in contents.problems():
        result.fail(problem)
    return contents


def finish_pull(rig: PullRig, case: Case, result: TrialResult) -> Done:
    """Run the pull again normally; then one valid bundle must hold every A instance once."""
    done = case.run("courier", *rig.args(case))
    if done.returncode != 0:
        result.fail(f"the resumed pull failed ({done.returncode}): {done.tail()}")
        return done
    contents = sealed_bundles_ok(rig, case, result)
    accounting = oracle.account(rig.terminal.a_instances(), contents.objects)
    result.lost += len(accounting.lost)
    result.duplicated += len(accounting.duplicated)
    if accounting.altered:
        result.fail(f"{len(accounting.altered)} instance(s) carried with other bytes")
    if len(contents.sealed) != 1 or contents.unsealed:
        result.fail(f"bundles after resuming: sealed {contents.sealed}, open {contents.unsealed}")
    if leftovers := oracle.temp_files(case.drive, case.receipts, case.home):
        result.fail(f"temporary files left: {leftovers[:3]}")
    for bundle_id in contents.sealed:
        _check_receipt_and_log(rig, case, bundle_id, result)
    skipped = {s["file"] for s in json.loads(done.stdout)["skipped"]}
    if contents.sealed and not {
        "DICOM/notes.txt",
        "DICOM/cut-short.dcm",
    } <= skipped | _skipped_on_receipt(case, contents.sealed[0]):
        result.fail("the odd files of the terminal are not reported as skipped")
    return done


def _skipped_on_receipt(case: Case, bundle_id: str) -> set[str]:
    path = case.receipts / f"reception-{bundle_id}.json"
    if not path.is_file():
        return set()
    doc = json.loads(path.read_bytes())
    return {str(s.get("item", "")) for s in doc.get("skipped", [])}


def _check_receipt_and_log(rig: PullRig, case: Case, bundle_id: str, result: TrialResult) -> None:
    receipt = case.receipts / f"reception-{bundle_id}.json"
    signature = Path(f"{receipt}.sig")
    if not receipt.is_file() or not signature.is_file():
        result.fail(f"no reception receipt for {bundle_id} at the clinic")
    elif not verify_receipt(receipt.read_bytes(), signature.read_bytes(), rig.signing_public):
        result.fail(f"the reception receipt of {bundle_id} does not verify")
    log = read_reception(case.drive / fmt.BUNDLES_DIR / bundle_id, rig.identity)["courier_log"]
    if problems := verify_block(log, rig.signing_public):
        result.fail(f"the courier log carried by {bundle_id} does not verify: {problems}")


def finish_import(rig: ImportRig, case: Case, result: TrialResult) -> Done:
    """Run the import again normally; the archive must then be the uninterrupted run's."""
    done = case.run("center", *rig.args(case))
    if done.returncode not in (0, PARTIAL_EXIT):
        result.fail(f"the re-run import failed ({done.returncode}): {done.tail()}")
        return done
    check = case.run("center", "check", "--json")
    if check.returncode != 0:
        result.fail(f"center check after the re-run: {check.returncode} {check.stdout[-600:]}")
    found = oracle.archive_instances(case.archive)
    accounting = oracle.account_shas(rig.instances, found)
    result.lost += len(accounting.lost)
    result.duplicated += len(accounting.duplicated)
    if accounting.altered:
        result.fail(f"{len(accounting.altered)} instance(s) stored that the reference has not")
    dump = oracle.catalog_dump(case.archive)
    if dump != rig.reference:
        diff = oracle.dump_diff(dump, rig.reference)
        result.fail(f"catalog differs from the uninterrupted import: {diff}")
    if oracle.store_objects(case.archive) != rig.objects:
        result.fail("the object store differs from the uninterrupted import's")
    if oracle.outbox_files(case.drive) != rig.outbox:
        result.fail("the drive's outbox differs from the uninterrupted import's")
    reports = len(list((case.archive / "quarantine").rglob("report.json")))
    if reports != rig.quarantine_reports:
        result.fail(f"{reports} quarantine reports, {rig.quarantine_reports} expected")
    if leftovers := oracle.temp_files(case.archive, case.drive):
        result.fail(f"temporary files left: {leftovers[:3]}")
    return done
