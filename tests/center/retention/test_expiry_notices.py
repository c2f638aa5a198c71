"""Expiry notices: signed documents queued in the outbox; delivery gates deletion."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from center.core import audit
from center.core.archive import Archive, CenterKeys
from center.core.expiry import NOTICE_UNDELIVERED, WAITING, study_states
from center.core.facilities import set_contract
from center.core.notices import list_notices, notice_delivered, notify
from center.core.outbox import pending
from center.core.purge import purge
from common.errors import NoticeNotFound
from common.receipts import verify_receipt
from tests.center.retention.conftest import Clinic
from tests.conftest import NOW


@pytest.fixture
def clinic(archive: Archive) -> Clinic:
    """Studies in a real archive: OLD expired 2025-03-10, SOON expires 2027-01-20, NEW 2031."""
    helper = Clinic(archive.conn, archive.store, archive.paths.root)
    helper.study("1.1", study_date="20150310", accession="OLD")
    helper.study("1.2", study_date="20170120", accession="SOON")
    helper.study("1.3", study_date="20210505", accession="NEW")
    set_contract(archive.conn, "clinic-1", on_expiry="notify", grace_days=30, operator="A", now=NOW)
    return helper


def _notify(archive: Archive, keys: CenterKeys | None, **kwargs: object):  # type: ignore[no-untyped-def]
    return notify(
        archive, keys, now=NOW, operator="Notifier", until=NOW.date() + timedelta(days=90), **kwargs
    )  # type: ignore[arg-type]


def test_notice_lists_studies_due_within_the_window(
    clinic: Clinic, archive: Archive, center_keys: CenterKeys
) -> None:
    """One notice names the expired and soon-expiring studies with their deletion dates."""
    report = _notify(archive, center_keys)
    [notice] = report.notices
    rows = {s["accession"]: s for s in notice.studies}
    assert set(rows) == {"OLD", "SOON"}
    assert rows["OLD"]["delete_on_or_after"] == (NOW.date() + timedelta(days=30)).isoformat()
    assert rows["SOON"]["expiry"] == "2027-01-20"
    assert rows["SOON"]["delete_on_or_after"] == "2027-01-21"


def test_notice_is_signed_queued_and_audited(
    clinic: Clinic, archive: Archive, center_keys: CenterKeys
) -> None:
    """The notice's JSON verifies with the center key, is in the outbox, and is audited."""
    [notice] = _notify(archive, center_keys).notices
    assert notice.html is not None
    folder = notice.html.parent
    body = (folder / f"{notice.notice_id}.json").read_bytes()
    signature = (folder / f"{notice.notice_id}.json.sig").read_bytes()
    assert verify_receipt(body, signature, archive.card.signing_public)
    doc = json.loads(body)
    assert doc["kind"] == "expiry-notice" and doc["issuer"]["kind"] == "center"
    assert "Deleted on or after" in notice.html.read_text()
    assert [d.document_id for d in pending(archive.conn)] == [notice.notice_id]
    entry = audit.entries(archive.conn, action="expiry-notice")[0]
    assert entry.operator == "Notifier" and entry.details["studies"] == 2


def test_studies_on_a_notice_are_not_notified_again(
    clinic: Clinic, archive: Archive, center_keys: CenterKeys
) -> None:
    """A second notify finds nothing new to announce."""
    _notify(archive, center_keys)
    assert _notify(archive, center_keys).notices == []


def test_dry_run_writes_nothing(clinic: Clinic, archive: Archive) -> None:
    """Without keys (a dry run) the notice is only planned."""
    report = _notify(archive, None)
    assert report.dry_run and len(report.notices) == 1
    assert list_notices(archive.conn) == [] and pending(archive.conn) == []


def test_undelivered_notice_blocks_deletion(
    clinic: Clinic, archive: Archive, center_keys: CenterKeys
) -> None:
    """Until the notice is delivered, the expired study stays."""
    _notify(archive, center_keys)
    report = purge(
        archive.conn,
        archive.store,
        now=NOW,
        operator="P",
        execute=True,
        lock_root=archive.paths.root,
    )
    assert report.deleted == [] and report.not_due == {NOTICE_UNDELIVERED: 1}


def test_delivery_by_hand_starts_the_grace_period(
    clinic: Clinic, archive: Archive, center_keys: CenterKeys
) -> None:
    """A delivery recorded by hand is audited; deletion waits 30 days from it."""
    [notice] = _notify(archive, center_keys).notices
    row, changed = notice_delivered(
        archive.conn,
        notice.notice_id,
        delivered_on=NOW.date(),
        note="clinic signed for it",
        operator="Desk",
        now=NOW,
    )
    assert changed and row.delivered_at == NOW.date().isoformat()
    assert audit.entries(archive.conn, action="notice-delivered")[0].operator == "Desk"
    states = {s.study.accession: s.decision for s in study_states(archive.conn, None, now=NOW)}
    assert states["OLD"].status == WAITING
    assert states["OLD"].due_on == NOW.date() + timedelta(days=30)
    later = NOW + timedelta(days=30)
    report = purge(
        archive.conn,
        archive.store,
        now=later,
        operator="P",
        execute=True,
        lock_root=archive.paths.root,
    )
    assert [d.accession for d in report.deleted] == ["OLD"]
    stone = archive.conn.execute("SELECT notice_id FROM tombstones").fetchone()
    assert stone[0] == notice.notice_id


def test_delivery_recorded_twice_changes_nothing(
    clinic: Clinic, archive: Archive, center_keys: CenterKeys
) -> None:
    """A second record of the same delivery keeps the first and is not audited again."""
    [notice] = _notify(archive, center_keys).notices
    first = date(2026, 11, 1)
    notice_delivered(
        archive.conn, notice.notice_id, delivered_on=first, note="", operator="D", now=NOW
    )
    row, changed = notice_delivered(
        archive.conn, notice.notice_id, delivered_on=NOW.date(), note="", operator="D", now=NOW
    )
    assert not changed and row.delivered_at == first.isoformat()
    assert len(audit.entries(archive.conn, action="notice-delivered")) == 1
    states = {s.study.accession: s.decision for s in study_states(archive.conn, None, now=NOW)}
    assert states["OLD"].due_on == NOW.date() + timedelta(days=30)  # the date the notice states


def test_unknown_notice_is_refused(clinic: Clinic, archive: Archive) -> None:
    """Recording delivery of a notice that does not exist is a clear error."""
    with pytest.raises(NoticeNotFound):
        notice_delivered(
            archive.conn, "expiry-x", delivered_on=NOW.date(), note="", operator="D", now=NOW
        )
