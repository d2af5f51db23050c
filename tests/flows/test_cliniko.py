"""Cliniko end to end, on the local Cliniko and its clock: a clinic connected today,
polled as the seam polls it; visits completed, missed and cancelled; one email per
visit; the patient's notes and the next appointment's notes; a revoked key; a throttled
or failing Cliniko; and not one request Cliniko would refuse."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from handlers.cliniko import PLATFORM
from plugin.clinics import connecting, health
from plugin.pipeline import polling
from plugin.store import database
from plugin.store.models import Appointment, Clinic, InboxEvent, PollState, WriteBack
from plugin.tasks import worker
from tests.support import cliniko as support
from tests.support.cliniko import check_ins, connect, drain, poll, poll_until_quiet, state
from tests.support.survey import answer_last_check_in

# The fixtures this module uses (pytest finds them here).
cliniko, cliniko_app, cliniko_clinic = support.cliniko, support.cliniko_app, support.cliniko_clinic

CLINIC_NOTES = "Allergic to almond oil.\r\nPrefers the ground-floor room.\n\n"
THERAPIST_NOTE = "Bring the wedge cushion."
PACE = PLATFORM.capabilities.poll_requests_per_minute


def visit(sandbox, patient, *, starts_in=timedelta(minutes=10), minutes=60, **fields):
    """An appointment booked now on the stand-in, starting ``starts_in`` from now."""
    return sandbox.seed_appointment(patient=patient, starts_at=sandbox.clock.now() + starts_in,
                                    minutes=minutes, **fields)


def inbox_count(app) -> int:
    with app.app_context(), database.session() as db:
        return db.scalar(select(func.count(InboxEvent.id)))


def summary(app, generic_clinic) -> dict:
    with app.app_context(), database.session() as db:
        return health.clinic_summary(db, db.get(Clinic, generic_clinic["id"]))


def busiest(requests, seconds: float) -> int:
    """The most requests the stand-in received within any ``seconds`` of its clock."""
    times = sorted(r.at for r in requests)
    most, first = 0, 0
    for last, when in enumerate(times):
        while (when - times[first]).total_seconds() >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_a_clinic_connected_today_with_500_past_visits_emails_none_of_those_clients(
        cliniko_app, cliniko, mailbox):
    now = cliniko.clock.now()
    regular = cliniko.seed_patient(first_name="Robin", email="robin@example.com")
    every = timedelta(hours=19)
    # The last of them ended an hour before the clinic connected.
    past = cliniko.seed_appointments(500, patient=regular, first_start=now - 499 * every
                                     - timedelta(hours=2), every=every, kind="arrived",
                                     updated_at=now - timedelta(days=300))
    for record in past[-30:]:  # touched this morning (invoices): still visits of the past
        cliniko.edit_appointment(record["id"], notes="Invoice sent")
    clinic = connect(cliniko_app, cliniko)
    upcoming = visit(cliniko, regular, starts_in=timedelta(days=2))
    cliniko.clock.advance(minutes=20)

    first = poll_until_quiet(cliniko_app, cliniko, clinic)
    cliniko.clock.advance(hours=3)
    later = poll_until_quiet(cliniko_app, cliniko, clinic)
    drain(cliniko_app)

    assert first[0].statuses == Counter(booked=1)  # the one booking still to come
    assert sum(o.read for o in later) == 0
    assert mailbox.messages == []
    assert check_ins(cliniko_app) == []
    with cliniko_app.app_context(), database.session() as db:
        assert db.scalars(select(Appointment.external_id)).all() == [upcoming["id"]]
    assert cliniko.refused == []


def test_a_visit_completed_after_connecting_gets_exactly_one_email(
        cliniko_app, cliniko, cliniko_clinic, mailbox):
    sam = cliniko.seed_patient(first_name="Sam", email="sam@example.com")
    booked = visit(cliniko, sam)
    cliniko.clock.advance(minutes=5)
    assert poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)[0].statuses == {"booked": 1}
    drain(cliniko_app)
    assert mailbox.messages == []

    # The visit ends; the grace for marking "did not arrive" passes; the next round.
    cliniko.clock.advance(minutes=90)
    assert poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)[0].statuses == {
        "completed": 1}
    drain(cliniko_app)
    (message,) = mailbox.messages
    assert message["To"] == "sam@example.com"
    assert "Hi Sam," in message.get_body(("plain",)).get_content()
    with cliniko_app.app_context(), database.session() as db:
        stored = db.scalar(select(Appointment).where(Appointment.external_id == booked["id"]))
        assert stored.status == "completed"
        # The poll said "completed" itself: no check at the end, no extra request.
        assert stored.next_check_at is None
    assert not cliniko.requests_to("GET", f"/individual_appointments/{booked['id']}")
    assert [c.status for c in check_ins(cliniko_app)] == ["sent"]
    # Every request after connecting counted for the clinic: the polls and the patient read.
    assert summary(cliniko_app, cliniko_clinic)["api_calls_this_month"] == \
        len(cliniko.requests) - 1
    assert len(cliniko.requests_to("GET", f"/patients/{sam['id']}")) == 1
    assert cliniko.refused == []


def test_the_same_visit_read_again_and_again_is_one_check_in(cliniko_app, cliniko,
                                                             cliniko_clinic, mailbox):
    sam = cliniko.seed_patient()
    booked = visit(cliniko, sam)
    cliniko.clock.advance(minutes=5)
    poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    cursor = state(cliniko_app, cliniko_clinic).cursor
    cliniko.clock.advance(minutes=90)
    poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    stored = inbox_count(cliniko_app)

    # A poll killed before it saved its cursor: the next one reads the same again.
    with cliniko_app.app_context(), database.session() as db:
        db.get(PollState, cliniko_clinic["id"]).cursor = cursor
    again = poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    assert again[0].statuses == {"completed": 1} and again[0].stored == 0
    assert inbox_count(cliniko_app) == stored
    drain(cliniko_app)

    # The clinic edits the finished visit (a treatment note): read again, as completed.
    cliniko.edit_appointment(booked["id"], notes="Treatment note written")
    cliniko.clock.advance(minutes=5)
    assert poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)[0].stored == 1
    drain(cliniko_app)

    assert len(mailbox.messages) == 1
    assert len(check_ins(cliniko_app)) == 1
    assert cliniko.refused == []


def test_no_show_late_cancellation_and_cancellation_get_no_email(
        cliniko_app, cliniko, cliniko_clinic, mailbox):
    came = cliniko.seed_patient(first_name="Sam", email="sam@example.com")
    missed = cliniko.seed_patient(first_name="Ana", email="ana@example.com")
    late = cliniko.seed_patient(first_name="Lee", email="lee@example.com")
    early = cliniko.seed_patient(first_name="Kim", email="kim@example.com")
    visits = {name: visit(cliniko, patient, starts_in=timedelta(hours=1))
              for name, patient in (("came", came), ("missed", missed), ("late", late),
                                    ("early", early))}
    cliniko.cancel(visits["early"]["id"])
    cliniko.clock.advance(minutes=5)
    poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    cliniko.clock.advance(minutes=50)
    cliniko.cancel(visits["late"]["id"])  # five minutes before the start
    cliniko.clock.advance(minutes=75)  # ten minutes after the end: within the grace
    cliniko.mark_did_not_arrive(visits["missed"]["id"])
    cliniko.clock.advance(minutes=10)
    poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    drain(cliniko_app)

    assert [m["To"] for m in mailbox.messages] == ["sam@example.com"]
    with cliniko_app.app_context(), database.session() as db:
        statuses = dict(db.execute(select(Appointment.external_id, Appointment.status)).all())
    assert statuses == {visits["came"]["id"]: "completed", visits["missed"]["id"]: "no_show",
                        visits["late"]["id"]: "cancelled", visits["early"]["id"]: "cancelled"}
    assert cliniko.refused == []


def test_the_answers_go_into_the_patients_notes_once_and_onto_the_next_booking(
        cliniko_app, cliniko, cliniko_clinic, mailbox):
    sam = cliniko.seed_patient(first_name="Sam", email="sam@example.com", notes=CLINIC_NOTES)
    visit(cliniko, sam)
    cliniko.clock.advance(minutes=90)
    poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    drain(cliniko_app)
    assert answer_last_check_in(cliniko_app, mailbox, 2, "Neck felt tight.").status_code == 200
    drain(cliniko_app)

    notes = cliniko.patient(sam["id"])["notes"]
    assert notes.startswith(CLINIC_NOTES)  # the clinic's text, byte for byte
    assert notes.count("[Rapport]") == 1 and notes.rstrip().endswith("[/Rapport]")
    assert "Neck felt tight." in notes
    assert len(cliniko.requests_to("PATCH", f"/patients/{sam['id']}")) == 1
    with cliniko_app.app_context(), database.session() as db:
        assert db.scalar(select(WriteBack.status)) == "delivered"

    # Sam books again: the talking points go onto that appointment's notes.
    cliniko.clock.advance(minutes=30)
    upcoming = visit(cliniko, sam, starts_in=timedelta(days=7), notes=THERAPIST_NOTE)
    cliniko.clock.advance(minutes=5)
    poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    drain(cliniko_app)
    booking_notes = cliniko.appointment(upcoming["id"])["notes"]
    assert booking_notes.startswith(THERAPIST_NOTE)
    assert booking_notes.count("[Rapport]") == 1

    # Rapport's own note changed the appointment in Cliniko: it is read again, harmlessly.
    cliniko.clock.advance(minutes=5)
    again = poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    assert again[0].statuses == {"booked": 1} and again[0].stored == 1
    drain(cliniko_app)
    assert len(cliniko.requests_to("PATCH", f"/individual_appointments/{upcoming['id']}")) == 1
    assert len(cliniko.requests_to("PATCH", f"/patients/{sam['id']}")) == 1
    assert cliniko.patient(sam["id"])["notes"] == notes
    assert len(mailbox.messages) == 1
    assert cliniko.refused == []


def test_a_revoked_key_shows_needs_reconnecting_and_polling_resumes_with_a_new_one(
        cliniko_app, cliniko, cliniko_clinic, mailbox):
    sam = cliniko.seed_patient()
    visit(cliniko, sam)
    cliniko.clock.advance(minutes=5)
    poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    cursor = state(cliniko_app, cliniko_clinic).cursor
    cliniko.accounts.pop(cliniko.api_key.rpartition("-")[0])  # the key is revoked

    cliniko.clock.advance(minutes=90)
    refused = poll(cliniko_app, cliniko, cliniko_clinic)
    assert "401" in refused.problem
    shown = summary(cliniko_app, cliniko_clinic)
    assert shown["status"] == "needs_reconnecting" and "401" in shown["status_detail"]
    assert f"rapport clinic cliniko {cliniko_clinic['key']} --api-key NEW" in shown["remedy"]
    assert state(cliniko_app, cliniko_clinic).cursor == cursor
    # Not polled again until it reconnects.
    with cliniko_app.app_context():
        assert polling.poll_due(now=cliniko.clock.now() + timedelta(hours=1)) == 0
    assert poll(cliniko_app, cliniko, cliniko_clinic, force=True).skipped.startswith(
        "the clinic is not connected")
    asked = len(cliniko.requests)

    new_key = cliniko.add_account(cliniko.shard)
    with cliniko_app.app_context():
        updated = connecting.update_credentials(cliniko_clinic["key"], "cliniko",
                                                {"api_key": new_key})
    assert updated.reconnected
    assert len(cliniko.requests) == asked + 1  # the new key, tried once
    resumed = poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    drain(cliniko_app)
    assert resumed[0].statuses == {"completed": 1}
    assert len(mailbox.messages) == 1
    assert summary(cliniko_app, cliniko_clinic)["last_poll_problem"] is None
    # Only the revoked key's requests were refused, and by Cliniko's rule for keys.
    assert {r.status for r in cliniko.refused} == {401}


def test_throttled_and_failing_polls_are_asked_again(cliniko_app, cliniko, cliniko_clinic,
                                                      mailbox):
    sam = cliniko.seed_patient()
    visit(cliniko, sam)
    cliniko.clock.advance(minutes=90)
    cliniko.fail_next("/individual_appointments", 429, headers={"Retry-After": "7"})
    throttled = poll(cliniko_app, cliniko, cliniko_clinic)
    assert "429" in throttled.problem and throttled.read == 0
    assert throttled.next_poll_at == cliniko.clock.now() + timedelta(seconds=7)
    shown = summary(cliniko_app, cliniko_clinic)
    assert "429" in shown["last_poll_problem"] and shown["status"] == "active"
    # Not before its time.
    assert poll(cliniko_app, cliniko, cliniko_clinic).skipped == "not due yet"

    cliniko.clock.advance(seconds=7)
    cliniko.fail_next("/individual_appointments", 500)
    failing = poll(cliniko_app, cliniko, cliniko_clinic)
    assert "500" in failing.problem
    assert state(cliniko_app, cliniko_clinic).failures == 2
    cliniko.clock.advance(seconds=(failing.next_poll_at - cliniko.clock.now()).total_seconds())
    answered = poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    drain(cliniko_app)

    assert answered[0].statuses == {"completed": 1}
    assert len(mailbox.messages) == 1
    assert summary(cliniko_app, cliniko_clinic)["last_poll_problem"] is None
    assert state(cliniko_app, cliniko_clinic).failures == 0
    assert cliniko.refused == []


def test_a_write_back_cliniko_fails_is_retried_and_written_once(cliniko_app, cliniko,
                                                                cliniko_clinic, mailbox):
    sam = cliniko.seed_patient(notes=CLINIC_NOTES)
    visit(cliniko, sam)
    cliniko.clock.advance(minutes=90)
    poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)
    drain(cliniko_app)
    cliniko.fail_next("/patients/", 500, method="PATCH")
    cliniko.fail_next("/patients/", 429, method="GET", headers={"Retry-After": "1"})
    answer_last_check_in(cliniko_app, mailbox, 4)
    with cliniko_app.app_context():
        worker.drain(forking=False, wait_for_scheduled=5)  # retries come a second apart

    notes = cliniko.patient(sam["id"])["notes"]
    assert notes.startswith(CLINIC_NOTES) and notes.count("[Rapport]") == 1
    patches = cliniko.requests_to("PATCH", f"/patients/{sam['id']}")
    assert [r.status for r in patches] == [500, 200]
    assert cliniko.refused == []


def test_paging_through_2000_appointments_keeps_well_under_the_rate_limit(
        cliniko_app, cliniko, cliniko_clinic):
    now = cliniko.clock.now()
    patient = cliniko.seed_patient()
    seeded = cliniko.seed_appointments(2000, patient=patient, first_start=now + timedelta(days=1),
                                       every=timedelta(minutes=20))
    cliniko.clock.advance(minutes=2)

    outcomes = poll_until_quiet(cliniko_app, cliniko, cliniko_clinic)

    assert sum(o.stored for o in outcomes) == 2000 == inbox_count(cliniko_app)
    assert sum(o.statuses["booked"] for o in outcomes) == 2000
    with cliniko_app.app_context(), database.session() as db:
        stored = db.scalars(select(InboxEvent.delivery_id)).all()
    assert {d.split(":")[1] for d in stored} == {r["id"] for r in seeded}
    lists = cliniko.requests_to("GET", "/individual_appointments")
    assert len(lists) == 20 == sum(o.calls for o in outcomes)
    # The declared pace, on Cliniko's clock: 60 a minute at most, against its 200.
    assert cliniko.busiest_minute() <= PACE < cliniko.rate_limit
    assert busiest(lists, 5) <= 5
    assert cliniko.refused == []
