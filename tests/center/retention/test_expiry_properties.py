"""Property tests on a real catalog: purge deletes only what may go; apply and purge are
idempotent."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from center.core.catalog import open_catalog
from center.core.facilities import set_contract
from center.core.holds import add_hold
from center.core.purge import purge, tombstones
from center.core.retention import install_rules
from center.core.retention_apply import apply_rules
from center.core.store import ObjectStore
from center.core.studyref import find_study
from common.retention_rules import preset_text
from common.sqlitedb import transaction
from tests.center.retention.conftest import MG_IMAGE, Clinic
from tests.conftest import NOW

TODAY = NOW.date()
FACILITIES = ("clinic-1", "clinic-2")
# A catalog per example: in memory-backed /dev/shm where there is one (fsyncs are free there).
FAST_TMP = "/dev/shm" if Path("/dev/shm").is_dir() else None

study_specs = st.lists(
    st.tuples(
        st.dates(min_value=date(1998, 1, 1), max_value=date(2012, 1, 1))
        | st.dates(min_value=date(2012, 1, 1), max_value=date(2026, 11, 1)),  # study date
        st.sampled_from(["P1", "P2", "P3"]),
        st.sampled_from(FACILITIES),
        st.sampled_from(["CR", "MG", "SR"]),
        st.integers(0, 4).map(lambda n: n == 0),  # held (one in five)
        st.none() | st.integers(0, 400),  # notice delivered this many days ago (notify only)
    ),
    min_size=1,
    max_size=6,
)
contract = st.tuples(st.sampled_from(["delete", "notify"]), st.integers(0, 120))
contract_specs = st.tuples(*[st.none() | contract | contract | contract] * 2)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    specs=study_specs,
    contracts=contract_specs,
    preset=st.sampled_from(["default", "japan", "england", "us-mammography"]),
    patient_hold=st.integers(0, 4).map(lambda n: n == 0),
)
def test_purge_deletes_only_what_may_go_and_both_steps_are_idempotent(
    specs: list[tuple[date, str, str, str, bool, int | None]],
    contracts: tuple[tuple[str, int] | None, ...],
    preset: str,
    patient_hold: bool,
) -> None:
    """Never an unexpired, held, or notified-but-in-grace study; a second apply and a second
    purge change nothing."""
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as tmp:
        conn = open_catalog(Path(tmp) / "catalog.sqlite")
        clinic = Clinic(conn, ObjectStore(Path(tmp) / "objects"), Path(tmp))
        install_rules(conn, preset_text(preset), origin=preset, operator="A", now=NOW)
        for facility, terms in zip(FACILITIES, contracts, strict=True):
            if terms:
                set_contract(
                    conn, facility, on_expiry=terms[0], grace_days=terms[1], operator="A", now=NOW
                )
        held, delivered = set(), {}
        for n, (day, patient, facility, modality, hold, ago) in enumerate(specs):
            uid = f"1.{n}"
            sop = MG_IMAGE if modality == "MG" else "1.2.840.10008.5.1.4.1.1.1"
            clinic.study(
                uid,
                study_date=f"{day:%Y%m%d}",
                patient=patient,
                facility=facility,
                modality=modality,
                sop_class=sop,
                instances=1,
            )
            if hold:
                held.add(uid)
                add_hold(conn, study=find_study(conn, uid), reason="r", operator="L", now=NOW)
            if ago is not None:
                delivered[uid] = TODAY - timedelta(days=ago)
        if patient_hold:
            add_hold(
                conn,
                facility_id=specs[0][2],
                patient_id=specs[0][1],
                reason="r",
                operator="L",
                now=NOW,
            )
            held |= {f"1.{n}" for n, s in enumerate(specs) if s[1:3] == specs[0][1:3]}
        apply_rules(conn, clinic.store, now=NOW, operator="A", lock_root=clinic.tmp)
        again_applied = apply_rules(conn, clinic.store, now=NOW, operator="A", lock_root=clinic.tmp)
        assert again_applied.changes == []
        stored = {
            str(r[0]): date.fromisoformat(str(r[1]))
            for r in conn.execute("SELECT study_instance_uid, expiry FROM studies")
        }
        with transaction(conn):
            for uid, on in delivered.items():
                facility = specs[int(uid.split(".")[1])][2]
                notice = f"n-{uid}"
                conn.execute(
                    "INSERT INTO expiry_notices VALUES (?, ?, ?, 'A', 30)",
                    (notice, facility, NOW.isoformat()),
                )
                conn.execute(
                    "INSERT INTO expiry_notice_studies VALUES (?, ?, ?, ?, ?)",
                    (
                        notice,
                        facility,
                        uid,
                        stored[uid].isoformat(),
                        (stored[uid] + timedelta(days=1)).isoformat(),
                    ),
                )
                conn.execute(
                    "INSERT INTO outbox_documents (document_id, facility_id, kind, queued_at, "
                    "delivered_at) VALUES (?, ?, 'expiry-notice', ?, ?)",
                    (notice, facility, NOW.isoformat(), on.isoformat()),
                )
        purge(conn, clinic.store, now=NOW, operator="P", execute=True, lock_root=clinic.tmp)
        event(f"deleted {len(tombstones(conn))} of {len(specs)}")
        for stone in tombstones(conn):
            uid = stone.study_instance_uid
            terms = contracts[FACILITIES.index(stone.facility_id)]
            assert uid not in held
            assert terms is not None
            assert TODAY > date.fromisoformat(stone.expiry) >= stored[uid]
            if terms[0] == "notify":
                assert (
                    uid in delivered and delivered[uid] + timedelta(days=max(30, terms[1])) <= TODAY
                )
            else:
                assert date.fromisoformat(stone.expiry) + timedelta(days=1 + terms[1]) <= TODAY
        again = purge(conn, clinic.store, now=NOW, operator="P", execute=True, lock_root=clinic.tmp)
        assert again.deleted == [] and again.objects_removed == 0
        remaining = {str(r[0]) for r in conn.execute("SELECT sha256 FROM instances")}
        assert set(clinic.store) == remaining
        conn.close()
