"""Polling the local Cliniko: what a first poll reports, paging under the rate limit,
resuming from the cursor, and visits that end with no edit in Cliniko."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from handlers.base import IgnoredEvent, PermanentError, TransientError
from handlers.cliniko import CALLS_PER_MINUTE, MAX_CALLS, PLATFORM, SETTLE, poll


def run(sandbox, creds, since, cursor=None, inbox=None):
    """Poll as Rapport's polling job does until nothing more is waiting, keeping the pace
    the adapter asks for on the stand-in's clock: the events found, and the cursor. With
    ``inbox`` (a set), a delivery already stored there is skipped, as Rapport's inbox does."""
    events, pages = [], 0
    while True:
        page = poll(creds, cursor, since=since, now=sandbox.clock.now())
        pages += 1
        assert page.calls <= MAX_CALLS
        for request in page.deliveries:
            if inbox is not None:
                if PLATFORM.delivery_id(request) in inbox:
                    continue
                inbox.add(PLATFORM.delivery_id(request))
            with contextlib.suppress(IgnoredEvent):
                events += PLATFORM.parse(request)
        cursor = page.cursor
        if not page.more:
            return events, cursor
        sandbox.clock.advance(seconds=page.calls * 60 / CALLS_PER_MINUTE)
        assert pages < 500, "the poll never finished"


def later(sandbox, **delta):
    sandbox.clock.advance(**delta)


def test_first_poll_of_a_clinic_with_500_past_visits_reports_none_of_them(
        cliniko_sandbox, cliniko_creds, cliniko_patient):
    now = cliniko_sandbox.clock.now()
    past = cliniko_sandbox.seed_appointments(
        500, patient=cliniko_patient, first_start=now - timedelta(days=400),
        every=timedelta(hours=18), kind="arrived", updated_at=now - timedelta(days=300))
    # Some were touched today (an invoice, a treatment note): still before the connection.
    for record in past[::25]:
        cliniko_sandbox.edit_appointment(record["id"], notes="Invoice sent")
    upcoming = cliniko_sandbox.seed_appointment(patient=cliniko_patient,
                                                starts_at=now + timedelta(days=3))
    since = now
    later(cliniko_sandbox, minutes=2)

    events, cursor = run(cliniko_sandbox, cliniko_creds, since)
    # Days later, with every window read again, still nothing of theirs.
    later(cliniko_sandbox, days=3)
    events_later, _ = run(cliniko_sandbox, cliniko_creds, since, cursor)

    past_ids = {record["id"] for record in past}
    assert not past_ids & {e.appointment_id for e in events + events_later}
    assert [e.appointment_id for e in events] == [upcoming["id"]]
    assert events[0].status == "booked"
    # Asked away by Cliniko, not read and dropped: every list asks for visits ending later.
    lists = cliniko_sandbox.requests_to("GET", "/individual_appointments")
    assert all(f"ends_at:>={since:%Y-%m-%dT%H:%M:%SZ}" in r.filters() for r in lists
               if any(f.startswith("updated_at") for f in r.filters()))


def test_paging_through_2000_appointments_stays_under_the_rate_limit_and_sees_each_once(
        cliniko_sandbox, cliniko_creds, cliniko_patient):
    now = cliniko_sandbox.clock.now()
    seeded = cliniko_sandbox.seed_appointments(
        2000, patient=cliniko_patient, first_start=now + timedelta(days=1),
        every=timedelta(minutes=20))
    later(cliniko_sandbox, minutes=2)

    events, _ = run(cliniko_sandbox, cliniko_creds, since=now)

    seen = Counter(e.appointment_id for e in events)
    assert set(seen) == {record["id"] for record in seeded}
    assert set(seen.values()) == {1}
    assert {e.status for e in events} == {"booked"}
    assert cliniko_sandbox.busiest_minute() <= CALLS_PER_MINUTE < 200
    assert cliniko_sandbox.refused == []
    # 20 pages of 100, asked for by id rather than by page number.
    lists = cliniko_sandbox.requests_to("GET", "/individual_appointments")
    assert len(lists) == 20
    assert all(("per_page", "100") in r.query and ("sort", "id") in r.query for r in lists)
    assert not any(name == "page" for r in lists for name, _ in r.query)


def test_the_cursor_resumes_without_gaps_or_repeats(cliniko_sandbox, cliniko_creds,
                                                     cliniko_patient):
    sandbox = cliniko_sandbox
    now = sandbox.clock.now()
    seeded = sandbox.seed_appointments(250, patient=cliniko_patient,
                                       first_start=now + timedelta(days=2))
    later(sandbox, minutes=2)
    first, cursor = run(sandbox, cliniko_creds, since=now)
    assert len(first) == 250

    later(sandbox, minutes=3)
    moved = [sandbox.edit_appointment(r["id"], starts_at=r["starts_at"] + timedelta(days=1))
             for r in seeded[10:20]]
    cancelled = [sandbox.cancel(r["id"]) for r in seeded[30:35]]
    archived = [sandbox.archive(r["id"]) for r in seeded[40:42]]
    added = sandbox.seed_appointments(40, patient=cliniko_patient,
                                      first_start=now + timedelta(days=9))
    later(sandbox, minutes=5)
    second, cursor = run(sandbox, cliniko_creds, since=now, cursor=cursor)

    expected = {r["id"]: "booked" for r in moved + added}
    expected |= {r["id"]: "cancelled" for r in cancelled + archived}
    assert Counter(e.appointment_id for e in second) == Counter(list(expected))
    assert {e.appointment_id: e.status for e in second} == expected

    later(sandbox, minutes=5)
    third, _ = run(sandbox, cliniko_creds, since=now, cursor=cursor)
    assert third == []


def test_edits_while_paging_are_read_once_more_and_nothing_is_skipped(
        cliniko_sandbox, cliniko_creds, cliniko_patient):
    sandbox = cliniko_sandbox
    now = sandbox.clock.now()
    seeded = sandbox.seed_appointments(700, patient=cliniko_patient,
                                       first_start=now + timedelta(days=1))
    later(sandbox, minutes=2)
    page = poll(cliniko_creds, None, since=now, now=sandbox.clock.now())
    assert page.more and page.calls == MAX_CALLS and len(page.deliveries) == 500
    # Between two polls the clinic edits one appointment already read and one not yet.
    sandbox.clock.advance(seconds=5)
    read, unread = seeded[3], seeded[650]
    sandbox.edit_appointment(read["id"], notes="Bring the heat pack")
    sandbox.edit_appointment(unread["id"], notes="Parking at the back")
    events = [e for r in page.deliveries for e in PLATFORM.parse(r)]
    rest, cursor = run(sandbox, cliniko_creds, since=now, cursor=page.cursor)
    later(sandbox, minutes=2)
    after, _ = run(sandbox, cliniko_creds, since=now, cursor=cursor)

    seen = Counter(e.appointment_id for e in events + rest + after)
    assert set(seen) == {r["id"] for r in seeded}
    assert seen[read["id"]] == 2  # its first version, then its edit
    # Edited before its page was read: it left the window being read (its updated_at is
    # now later) without shifting the others, and came once, edited, in the next.
    assert seen[unread["id"]] == 1
    assert [e for e in rest + after if e.appointment_id == unread["id"]][0].occurred_at > (
        unread["updated_at"])
    assert sum(seen.values()) == 701


def test_a_visit_that_simply_ends_is_reported_completed_after_the_grace(
        cliniko_sandbox, cliniko_creds, cliniko_patient):
    sandbox = cliniko_sandbox
    now = sandbox.clock.now()
    visit = sandbox.seed_appointment(patient=cliniko_patient, starts_at=now + timedelta(hours=1))
    no_show = sandbox.seed_appointment(patient=cliniko_patient,
                                       starts_at=now + timedelta(hours=1))
    later(sandbox, minutes=2)
    inbox = set()
    booked, cursor = run(sandbox, cliniko_creds, since=now, inbox=inbox)
    assert {e.status for e in booked} == {"booked"} and len(booked) == 2

    # Ten minutes after the end the front desk marks the other client "did not arrive".
    later(sandbox, hours=2, minutes=10)
    sandbox.mark_did_not_arrive(no_show["id"])
    later(sandbox, minutes=2)
    within_grace, cursor = run(sandbox, cliniko_creds, since=now, cursor=cursor, inbox=inbox)
    assert [(e.appointment_id, e.status) for e in within_grace] == [(no_show["id"], "no_show")]

    later(sandbox, minutes=8)
    ended, cursor = run(sandbox, cliniko_creds, since=now, cursor=cursor, inbox=inbox)
    # The no-show, listed again as ended, is the delivery the inbox already holds.
    [done] = ended
    assert (done.appointment_id, done.status) == (visit["id"], "completed")
    assert done.end == visit["ends_at"].replace(microsecond=0)
    assert done.occurred_at == done.end + timedelta(minutes=15)
    assert sandbox.appointment(visit["id"])["updated_at"] == visit["updated_at"]

    later(sandbox, minutes=5)
    assert run(sandbox, cliniko_creds, since=now, cursor=cursor, inbox=inbox)[0] == []


def test_a_quiet_clinic_costs_two_requests_a_poll(cliniko_sandbox, cliniko_creds):
    now = cliniko_sandbox.clock.now()
    later(cliniko_sandbox, minutes=20)
    cursor = poll(cliniko_creds, None, since=now, now=cliniko_sandbox.clock.now()).cursor
    for _ in range(3):
        later(cliniko_sandbox, minutes=5)
        page = poll(cliniko_creds, cursor, since=now, now=cliniko_sandbox.clock.now())
        assert (page.calls, page.more, list(page.deliveries)) == (2, False, [])
        cursor = page.cursor


def test_an_edit_in_the_second_a_window_closes_is_read_in_the_next_window_once(
        cliniko_sandbox, cliniko_creds, cliniko_patient):
    # Cliniko shows updated_at to the second; the stand-in keeps the fraction, as a
    # database would. The window closing at `start` must not read a record changed at
    # start + 0.7 s (shown as `start`), and the next window must read it, once.
    sandbox = cliniko_sandbox
    start, since = sandbox.clock.now(), sandbox.clock.now() - timedelta(hours=1)
    earlier = sandbox.seed_appointment(patient=cliniko_patient,
                                       starts_at=start + timedelta(days=1),
                                       updated_at=start - timedelta(seconds=0.5))
    sandbox.clock.advance(seconds=0.7)
    boundary = sandbox.seed_appointment(patient=cliniko_patient,
                                        starts_at=start + timedelta(days=1))
    assert sandbox.render_appointment(boundary)["updated_at"] == f"{start:%Y-%m-%dT%H:%M:%SZ}"

    closing_at_start = start + SETTLE + timedelta(seconds=0.9)
    first = poll(cliniko_creds, None, since=since, now=closing_at_start)
    assert [json.loads(r.body)["id"] for r in first.deliveries] == [earlier["id"]]
    second = poll(cliniko_creds, first.cursor, since=since,
                  now=closing_at_start + timedelta(seconds=1))
    assert [json.loads(r.body)["id"] for r in second.deliveries] == [boundary["id"]]
    third = poll(cliniko_creds, second.cursor, since=since,
                 now=closing_at_start + timedelta(minutes=5))
    assert list(third.deliveries) == []


def test_a_throttled_poll_keeps_what_it_read_and_resumes(cliniko_sandbox, cliniko_creds,
                                                         cliniko_patient):
    sandbox = cliniko_sandbox
    now = sandbox.clock.now()
    seeded = sandbox.seed_appointments(450, patient=cliniko_patient,
                                       first_start=now + timedelta(days=1))
    later(sandbox, minutes=2)
    sandbox.fail_next("/individual_appointments", 429, after=2, headers={"Retry-After": "7"})
    partial = poll(cliniko_creds, None, since=now, now=sandbox.clock.now())
    assert (partial.calls, partial.more, len(partial.deliveries)) == (3, True, 200)

    sandbox.fail_next("/individual_appointments", 429, headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as throttled:
        poll(cliniko_creds, partial.cursor, since=now, now=sandbox.clock.now())
    assert throttled.value.retry_after == 7

    later(sandbox, seconds=7)
    rest, _ = run(sandbox, cliniko_creds, since=now, cursor=partial.cursor)
    seen = Counter(json.loads(r.body)["id"] for r in partial.deliveries)
    seen.update(e.appointment_id for e in rest)
    assert seen == Counter({r["id"]: 1 for r in seeded})


def test_a_failure_after_a_page_read_keeps_that_page_s_progress(cliniko_sandbox,
                                                                cliniko_creds):
    since = cliniko_sandbox.clock.now()
    later(cliniko_sandbox, minutes=20)
    now = cliniko_sandbox.clock.now()
    cliniko_sandbox.fail_next("/individual_appointments", 503, after=1)
    page = poll(cliniko_creds, None, since=since, now=now)
    assert (page.calls, page.more, list(page.deliveries)) == (2, True, [])
    again = poll(cliniko_creds, page.cursor, since=since, now=now)
    assert again.calls == 1
    ended_read, changed_failed, changed_read = cliniko_sandbox.requests
    assert ended_read.filters()[0].startswith("ends_at:>=")
    assert changed_failed.status == 503
    assert changed_read.filters()[0].startswith("updated_at:<")


def test_a_list_not_sorted_by_id_stops_the_poll_rather_than_skip(cliniko_sandbox, cliniko_creds,
                                                                cliniko_patient):
    now = cliniko_sandbox.clock.now()
    cliniko_sandbox.seed_appointments(3, patient=cliniko_patient,
                                      first_start=now + timedelta(days=1))
    cliniko_sandbox.honours_sort = False
    later(cliniko_sandbox, minutes=2)
    with pytest.raises(PermanentError, match="ascending id order"):
        poll(cliniko_creds, None, since=now, now=cliniko_sandbox.clock.now())


@pytest.mark.parametrize("cursor", ["{}", "[]", "not json", '{"v": 2}',
                                    '{"v": 1, "since": "2026-11-25T10:00:00", "changed": {}, '
                                    '"ended": {}}'])
def test_a_cursor_rapport_did_not_write_is_refused(cliniko_creds, cursor):
    with pytest.raises(PermanentError, match="not a Cliniko poll cursor"):
        poll(cliniko_creds, cursor, since=datetime.now(UTC))
