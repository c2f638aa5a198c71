"""Scenario 3, damaged bundles: hypothesis mutates a sealed bundle; the verifier names each
change and the import stores only verified objects.

The drive holds two sealed bundles of one courier (the target and a partner it can swap objects
with), made by the real `courier pull`; the archive has already imported an older bundle of the
same courier, which a mutation may present again (replay), as it is or under a new folder name.
Mutations: truncate, flip a bit, delete, duplicate, rename, add a file, replace a file by a
symbolic link, edit a clear bag-info field, swap objects between the bundles.

For each example: the keyless verifier must name every file that differs from the sealed
original (or refuse the format outright); then `center import` (core API) runs on a copy of the
archive, and every cataloged instance must be one the original bundles really carried, at the
same bundle and position, with those exact bytes in the store; the partner bundle must be stored
whole, an untouched object of an accepted target must be stored, and a replay must change
nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from center.core.archive import CenterKeys, open_archive
from center.core.importer import import_drive
from common.bundle import format as fmt
from common.bundle.reader import decrypt_object, open_index
from common.bundle.verify import FORMAT_UNSUPPORTED, verify_bundle
from common.errors import ArchiveError
from reliability import oracle
from reliability.harness import Row, RunContext, TrialResult, timed
from reliability.leakscan import Needles, patient_needles, scan_bytes
from reliability.world import (
    CENTER_PASS,
    NOW,
    OPERATOR,
    SECOND_SPEC,
    Case,
    cli_env,
    make_center,
    make_device,
    make_terminal,
    pull_args,
)

NEW_NAMES = (
    "data/s0001/000099.age",
    "data/s0002/000001.age",
    "data/notes.txt",
    "extra.txt",
    ".hidden",
    "index.age.orig",
)
BAG_FIELDS = (
    "Bundle-Id",
    "Bundle-Format-Version",
    "Courier-Device-Id",
    "Courier-Device-Fingerprint",
    "Courier-Device-Public-Key",
    "Facility-Id",
    "Created",
    "Object-Count",
    "Study-Count",
    "Payload-Oxum",
)
ACCEPTED = ("imported", "partial")


@dataclass
class Original:
    """The sealed bundles before any mutation, and what each object really is."""

    drive: Path  # bundles/<target>, bundles/<partner>
    archive: Path  # has imported <old>
    old: Path  # the older bundle, already imported
    target: str
    partner: str
    truth: dict[tuple[str, int], tuple[str, str]]  # (bundle, seq): (sop uid, sha256)
    files: list[str]  # relpaths in the target bundle
    objects: dict[str, list[str]]  # bundle: object relpaths
    needles: Needles


def _index(bundle: Path, identity: str) -> dict[tuple[str, int], tuple[str, str]]:
    report = verify_bundle(bundle)
    assert report.info is not None and report.valid, report.defects
    truth = {}
    with open_index(bundle, identity, report.info, spool_dir=bundle.parent) as index:
        for entry in index:
            sink = io.BytesIO()
            decrypt_object(bundle, entry, identity, sink)
            truth[(bundle.name, entry.seq)] = (entry.header.sop_instance_uid, entry.sha256)
    return truth


def _files(bundle: Path) -> list[str]:
    return sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())


def prepare(base: Path) -> Original:
    """Three pulls of one clinic by the real courier; the archive imports the first."""
    world = Case(base / "world", cli_env(base / "world"))
    world.root.mkdir(parents=True)
    make_center(world.archive)
    make_device(world.home, world.archive)
    world.drive.mkdir()
    terminal = make_terminal(base / "terminal", SECOND_SPEC)
    manifests = [terminal.manifest]
    bundles = []
    for visit in range(3):
        if visit:
            start = SECOND_SPEC.studies * visit
            manifests.append(make_terminal(terminal.root, SECOND_SPEC, start_index=start).manifest)
        done = world.run(
            "courier", *pull_args("clinic-1", terminal.root, world.drive, world.receipts)
        )
        if done.returncode != 0:
            raise RuntimeError(f"pull {visit} failed: {done.tail()}")
        bundles.append(json.loads(done.stdout)["bundle_id"])
        if visit == 0:
            imported = world.run("center", "import", str(world.drive), "--json")
            if imported.returncode != 0:
                raise RuntimeError(f"import failed: {imported.tail()}")
    old, target, partner = bundles
    identity = oracle.center_identity(world.archive)
    truth: dict[tuple[str, int], tuple[str, str]] = {}
    for name in bundles:
        truth |= _index(world.drive / fmt.BUNDLES_DIR / name, identity)
    shutil.move(world.drive / fmt.BUNDLES_DIR / old, base / "old")
    root = world.drive / fmt.BUNDLES_DIR
    return Original(
        drive=world.drive,
        archive=world.archive,
        old=base / "old",
        target=target,
        partner=partner,
        truth=truth,
        files=_files(root / target),
        objects={
            name: [f for f in _files(root / name) if f.startswith(f"{fmt.DATA}/")]
            for name in (target, partner)
        },
        needles=patient_needles(manifests),
    )


def mutations(orig: Original) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    objects = [f for f in orig.files if f.startswith(f"{fmt.DATA}/")]
    tags = [f for f in orig.files if f not in objects]
    files = st.one_of(st.sampled_from(objects), st.sampled_from(tags))  # objects as often
    names = st.sampled_from(orig.files + list(NEW_NAMES))
    one = st.one_of(
        st.tuples(st.just("truncate"), files, st.floats(0, 0.999)),
        st.tuples(st.just("bitflip"), files, st.integers(0, 1 << 30), st.integers(0, 7)),
        st.tuples(st.just("delete"), files),
        st.tuples(st.just("duplicate"), files, st.sampled_from(NEW_NAMES)),
        st.tuples(st.just("rename"), files, names),
        st.tuples(st.just("add"), st.sampled_from(NEW_NAMES), st.binary(max_size=64)),
        st.tuples(st.just("symlink"), files, st.sampled_from(["/etc/hostname", "../x"])),
        st.tuples(
            st.just("edit-info"),
            st.sampled_from(BAG_FIELDS),
            st.text(st.characters(min_codepoint=32, max_codepoint=0x24F), max_size=24),
        ),
        st.tuples(
            st.just("swap"),
            st.sampled_from(orig.objects[orig.target]),
            st.sampled_from(orig.objects[orig.partner]),
        ),
    )
    return st.lists(one, min_size=1, max_size=3)


def apply(bundle: Path, partner: Path, mutation: tuple[Any, ...]) -> None:
    kind, *args = mutation
    path = bundle / args[0] if kind not in ("edit-info",) else bundle / fmt.BAG_INFO
    if kind == "truncate" and path.is_file():
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * args[1])])
    elif kind == "bitflip" and path.is_file() and path.stat().st_size:
        data = bytearray(path.read_bytes())
        data[args[1] % len(data)] ^= 1 << args[2]
        path.write_bytes(bytes(data))
    elif kind == "delete" and path.exists():
        path.unlink()
    elif kind == "duplicate" and path.is_file():
        (bundle / args[1]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, bundle / args[1])
    elif kind == "rename" and path.exists() and args[0] != args[1]:
        (bundle / args[1]).parent.mkdir(parents=True, exist_ok=True)
        path.replace(bundle / args[1])
    elif kind == "add":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(args[1])
    elif kind == "symlink" and path.exists():
        path.unlink()
        path.symlink_to(args[1])
    elif kind == "edit-info" and path.is_file():
        lines = path.read_bytes().decode("utf-8", "replace").splitlines()
        edited = [
            f"{args[0]}: {args[1]}" if line.startswith(f"{args[0]}:") else line for line in lines
        ]
        path.write_bytes(("\n".join(edited) + "\n").encode())
    elif kind == "swap":
        shutil.copyfile(partner / args[1], path)


def _tree(bundle: Path) -> dict[str, bytes | str]:
    """Every file (bytes) or symbolic link (its target) of a bundle, by relative path."""
    tree: dict[str, bytes | str] = {}
    for p in bundle.rglob("*"):
        rel = p.relative_to(bundle).as_posix()
        if p.is_symlink():
            tree[rel] = f"-> {p.readlink()}"
        elif p.is_file():
            tree[rel] = p.read_bytes()
    return tree


def _named(path: str, defects: list[Any]) -> bool:
    """Does some defect name *path*? (A changed tag manifest shows as a bad signature.)"""
    accepted = {path, fmt.SIGNATURE} if path == fmt.TAGMANIFEST else {path}
    return any(d.path in accepted or path in d.detail for d in defects)


def _masked(path: str, changed: list[str]) -> bool:
    """A file listed by a listing that was itself changed need not be named on its own: the
    listing's defect is the finding (a changed manifest hides which object it listed)."""
    if path.startswith(f"{fmt.DATA}/"):
        return fmt.MANIFEST in changed
    return path != fmt.TAGMANIFEST and fmt.TAGMANIFEST in changed


def check_example(
    orig: Original, keys: CenterKeys, work: Path, muts: list[tuple[Any, ...]], replay: str
) -> TrialResult:
    result = TrialResult("refused")
    drive = work / "drive"
    shutil.copytree(orig.drive, drive, symlinks=True)
    shutil.copytree(orig.archive, work / "archive", symlinks=True)
    bundle = drive / fmt.BUNDLES_DIR / orig.target
    partner = drive / fmt.BUNDLES_DIR / orig.partner
    before = _tree(bundle)
    for mutation in muts:
        apply(bundle, partner, mutation)
    if replay == "same":
        shutil.copytree(orig.old, drive / fmt.BUNDLES_DIR / orig.old.name, symlinks=True)
    elif replay == "renamed":
        shutil.copytree(
            orig.old, drive / fmt.BUNDLES_DIR / "20301231T235959Z-0badcafe", symlinks=True
        )
    result.faults = len(muts) + (replay != "none")
    after = _tree(bundle)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    report = verify_bundle(bundle)
    if changed and report.valid:
        result.fail(f"verifier found nothing after {muts}: changed {changed}")
    if FORMAT_UNSUPPORTED not in report.kinds():
        for path in changed:
            if _masked(path, changed):
                continue
            if not _named(path, report.defects):
                named = [d.describe() for d in report.defects]
                result.fail(f"verifier did not name {path} after {muts}: {named}")
    _import_and_check(orig, keys, work, changed, muts, replay, result)
    return result


def _import_and_check(
    orig: Original, keys: CenterKeys, work: Path, changed: list[str], muts: list[Any], replay: str,
    result: TrialResult,
) -> None:  # fmt: skip
    drive, archive = work / "drive", work / "archive"
    try:
        with open_archive(archive) as opened:
            report = import_drive(opened, keys, drive, operator=OPERATOR, now=NOW)
    except ArchiveError as exc:
        result.fail(f"import stopped with {exc.ref} after {muts}: {exc.message}")
        return
    except Exception as exc:  # noqa: BLE001 - a crash of the importer is the finding
        result.fail(f"import crashed after {muts}: {exc!r}")
        return
    outcomes = {o.bundle_id: o for o in report.outcomes}
    target = outcomes.get(orig.target)
    result.outcome = target.status if target else "target-not-seen"
    for o in report.outcomes:
        text = " ".join([o.reason, *o.notes]).encode()
        for leak in scan_bytes(f"import outcome of {o.bundle_id}", text, orig.needles):
            result.leaks += 1
            result.fail(leak.describe())
    partner = outcomes.get(orig.partner)
    if partner is None or partner.status != "imported":
        result.fail(f"the untouched partner bundle was not imported: {partner}")
    for bundle_id, o in outcomes.items():
        if bundle_id not in (orig.target, orig.partner) and o.status in ACCEPTED:
            result.fail(f"a replayed bundle was imported again as {bundle_id} ({replay})")
    conn = oracle.read_only(archive / "catalog.sqlite")
    try:
        rows = conn.execute(
            "SELECT sop_instance_uid, sha256, bundle_id, bundle_seq FROM instances"
        ).fetchall()
    except sqlite3.Error as exc:
        result.fail(f"catalog unreadable: {exc}")
        return
    finally:
        conn.close()
    store = archive / "objects"
    seen: dict[tuple[str, str], int] = {}
    for uid, digest, bundle_id, seq in rows:
        seen[(uid, digest)] = seen.get((uid, digest), 0) + 1
        if orig.truth.get((bundle_id, seq)) != (uid, digest):
            result.fail(f"cataloged {bundle_id}#{seq} is not what that bundle carried ({muts})")
        obj = store / digest[:2] / digest[2:4] / digest
        if not obj.is_file() or hashlib.sha256(obj.read_bytes()).hexdigest() != digest:
            result.fail(f"cataloged {bundle_id}#{seq} has no intact object in the store")
    result.duplicated += sum(n - 1 for n in seen.values() if n > 1)
    stored = {(b, s) for _u, _d, b, s in rows}
    for (bundle_id, seq), _ in orig.truth.items():
        relpath = fmt.object_relpath(seq)
        untouched = relpath not in changed
        accepted = outcomes.get(bundle_id) is not None and outcomes[bundle_id].status in ACCEPTED
        must = bundle_id == orig.partner or (bundle_id == orig.target and accepted and untouched)
        if must and (bundle_id, seq) not in stored:
            result.lost += 1
            result.fail(
                f"intact object {bundle_id}#{seq} of an accepted bundle not stored ({muts})"
            )


def run(ctx: RunContext) -> Row:
    started = time.monotonic()
    row = Row("3 damaged bundles", note=f"hypothesis, seed {ctx.seed}")
    with ctx.folder("damaged") as base:
        orig = prepare(base / "original")
        with open_archive(orig.archive) as opened:
            keys = opened.unlock(CENTER_PASS)
        counter = [0]

        @seed(ctx.seed)
        @settings(
            max_examples=3 * ctx.examples,  # about 0.1 s each
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(mutations(orig), st.sampled_from(["none", "none", "same", "renamed"]))
        def example(muts: list[tuple[Any, ...]], replay: str) -> None:
            counter[0] += 1
            work = base / f"example-{counter[0]}"
            work.mkdir()
            try:
                result = check_example(orig, keys, work, muts, replay)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            row.add(f"damaged #{counter[0]}", result)
            if result.failures or result.lost or result.duplicated or result.leaks:
                raise AssertionError(result.failures[:3])

        try:
            example()
        except Exception as exc:  # noqa: BLE001 - hypothesis' report of the falsifying example
            row.failures.append(f"falsifying example (hypothesis, seed {ctx.seed}): {exc!r}")
    return timed(row, started)
