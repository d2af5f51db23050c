"""The polling job and its cursor: when a clinic is due, from when visits count, the pace
the platform declares, one poll of a clinic at a time, a poll killed midway, and what a
refusal leaves behind."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from handlers.cliniko import PLATFORM
from plugin import create_app
from plugin.clinics import health, records
from plugin.config import ConfigurationError
from plugin.pipeline import polling
from plugin.store import database
from plugin.store.models import Appointment, CheckIn, Clinic, InboxEvent, PollState
from plugin.tasks import queue, worker
from tests.sandboxes.cliniko import ClinikoSandbox
from tests.support import cliniko as support
from tests.support.cliniko import cliniko_config, connect, drain, poll, state
from tests.support.generic import generic_credentials

# The fixtures this module uses (pytest finds them here).
cliniko, cliniko_app, cliniko_clinic = support.cliniko, support.cliniko_app, support.cliniko_clinic
PACE = PLATFORM.capabilities.poll_requests_per_minute


@pytest.fixture
def live_cliniko():
    """A local Cliniko on the real time, for what is queued for later in Redis."""
    with ClinikoSandbox() as sandbox:
        yield sandbox


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def inbox_rows(app) -> list[str]:
    with app.app_context(), database.session() as db:
        return list(db.scalars(select(InboxEvent.delivery_id).order_by(InboxEvent.id)))


def claim(app, generic_clinic, claimed_at):
    with app.app_context(), database.session() as db:
        db.execute(update(PollState).where(PollState.clinic_id == generic_clinic["id"])
                   .values(claimed_at=claimed_at))


def test_a_first_poll_counts_visits_from_the_connection_less_the_horizon(
        app_factory, cliniko, mailbox):
    app = app_factory(**cliniko_config(cliniko), POLL_HORIZON_HOURS=3)
    now = cliniko.clock.now()
    sam, kim = cliniko.seed_patient(email="sam@example.com"), cliniko.seed_patient(
        first_name="Kim", email="kim@example.com")
    cliniko.seed_appointment(patient=sam, starts_at=now - timedelta(hours=3))  # ended 2 h ago
    cliniko.seed_appointment(patient=kim, starts_at=now - timedelta(hours=5))  # 4 h ago
    clinic = connect(app, cliniko)
    cliniko.clock.advance(minutes=2)

    outcome = poll(app, cliniko, clinic)
    drain(app)

    assert state(app, clinic).since == now - timedelta(hours=3)
    assert outcome.statuses == {"completed": 1}
    assert [m["To"] for m in mailbox.messages] == ["sam@example.com"]


def test_the_polling_settings_are_checked_when_rapport_starts(tmp_path, redis_url):
    base = {"ENV": "development", "INSTANCE_PATH": str(tmp_path), "REDIS_URL": redis_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'rapport.db'}"}
    assert create_app({**base, "POLL_INTERVAL_SECONDS": "600"}).config[
        "POLL_INTERVAL_SECONDS"] == 600
    for name, value, said in (("POLL_INTERVAL_SECONDS", 10, "at least 60"),
                              ("POLL_INTERVAL_SECONDS", "often", "at least 60"),
                              ("POLL_HORIZON_HOURS", 72, "from 0 to 48"),
                              ("POLL_HORIZON_HOURS", -1, "from 0 to 48")):
        with pytest.raises(ConfigurationError, match=said) as raised:
            create_app({**base, name: value})
        assert f"RAPPORT_{name}" in str(raised.value)


def test_while_more_is_waiting_the_next_poll_comes_at_the_declared_pace(
        app_factory, live_cliniko):
    app = app_factory(**cliniko_config(live_cliniko))
    clinic = connect(app, live_cliniko)
    now = live_cliniko.clock.now()
    live_cliniko.seed_appointments(600, patient=live_cliniko.seed_patient(),
                                   first_start=now + timedelta(days=1))
    live_cliniko.clock.advance(minutes=2)

    with app.app_context():
        polling.poll_clinic(clinic["id"], now=live_cliniko.clock.now())
        scheduled = queue.queue().scheduled_job_registry
        jobs = {job_id: scheduled.get_scheduled_time(job_id)
                for job_id in scheduled.get_job_ids()}

    first = state(app, clinic)
    assert first.next_poll_at == first.last_polled_at + timedelta(seconds=5 * 60 / PACE)
    assert len(inbox_rows(app)) == 500  # five pages of a hundred
    (job_id,) = jobs
    assert job_id.endswith(f"poll_clinic-{clinic['id']}-at{int(first.next_poll_at.timestamp())}")
    assert jobs[job_id].replace(tzinfo=timezone.utc) == first.next_poll_at

    live_cliniko.clock.advance(seconds=5)
    last = poll(app, live_cliniko, clinic)
    assert not last.more and last.stored == 100
    assert last.next_poll_at == last.at + timedelta(seconds=app.config["POLL_INTERVAL_SECONDS"])


def test_poll_due_queues_the_clinics_that_are_due_and_no_others(app_factory, live_cliniko):
    app = app_factory(**cliniko_config(live_cliniko))
    never = connect(app, live_cliniko)
    polled = connect(app, live_cliniko)
    refused = connect(app, live_cliniko)
    poll(app, live_cliniko, polled)
    with app.app_context(), database.session() as db:
        records.mark_needs_reconnecting(db.get(Clinic, refused["id"]), "401 Unauthorized")
        generic = records.create(db, name="Other", platform="generic",
                                 credentials=generic_credentials("https://example.com/hook"))
        assert generic.clinic.id

    moment = utcnow()
    with app.app_context():
        assert polling.poll_due(now=moment) == 1
        queued = queue.queue().get_job_ids()
        assert polling.poll_due(now=moment) == 1  # found due again: not queued twice
        assert queue.queue().get_job_ids() == queued
        # Its round comes: then it is due too.
        later = moment + timedelta(seconds=app.config["POLL_INTERVAL_SECONDS"] + 1)
        assert polling.poll_due(now=later) == 2
    assert len(queued) == 1 and f"poll_clinic-{never['id']}-" in queued[0]


def test_a_clinic_is_polled_by_one_poll_at_a_time_and_a_killed_poll_is_taken_over(
        cliniko_app, cliniko, cliniko_clinic):
    cliniko.seed_appointments(600, patient=cliniko.seed_patient(),
                              first_start=cliniko.clock.now() + timedelta(days=1))
    cliniko.clock.advance(minutes=2)
    first = poll(cliniko_app, cliniko, cliniko_clinic)
    assert first.more and first.stored == 500
    cursor = state(cliniko_app, cliniko_clinic).cursor
    cliniko.clock.advance(minutes=1)

    claim(cliniko_app, cliniko_clinic, utcnow())  # a poll under way in another worker
    asked = len(cliniko.requests)
    busy = poll(cliniko_app, cliniko, cliniko_clinic, force=True)
    assert busy.skipped == "another poll of this clinic is under way"
    assert len(cliniko.requests) == asked

    # That worker was killed mid-poll: once its claim is older than a job may run, the
    # clinic is polled again, from the cursor the last finished poll saved.
    claim(cliniko_app, cliniko_clinic, utcnow() - timedelta(seconds=polling.CLAIM_SECONDS + 1))
    resumed = poll(cliniko_app, cliniko, cliniko_clinic)
    assert resumed.stored == 100 and not resumed.more
    after = json.loads(cursor)["changed"]["after"]
    assert f"id:>{after}" in cliniko.requests[asked].filters()
    assert len(set(inbox_rows(cliniko_app))) == len(inbox_rows(cliniko_app)) == 600
    assert state(cliniko_app, cliniko_clinic).claimed_at is None


def test_a_poll_that_is_not_due_asks_nothing(cliniko_app, cliniko, cliniko_clinic):
    poll(cliniko_app, cliniko, cliniko_clinic)
    asked = len(cliniko.requests)
    cliniko.clock.advance(minutes=2)
    with cliniko_app.app_context():
        polling.poll_clinic(cliniko_clinic["id"], now=cliniko.clock.now())
    assert len(cliniko.requests) == asked


def test_a_refused_poll_keeps_the_cursor_and_says_why_until_one_succeeds(
        app_factory, cliniko, cliniko_app, cliniko_clinic, mailbox):
    poll(cliniko_app, cliniko, cliniko_clinic)
    cursor = state(cliniko_app, cliniko_clinic).cursor
    visit = cliniko.seed_appointment(patient=cliniko.seed_patient(),
                                     starts_at=cliniko.clock.now() + timedelta(minutes=5))
    # The installation lost its contact email: Rapport makes no request to Cliniko.
    unsettled = app_factory(CLINIKO_BASE_URL=cliniko.settings()["base_url"])
    cliniko.clock.advance(minutes=90)
    asked = len(cliniko.requests)

    refused = poll(unsettled, cliniko, cliniko_clinic)

    assert len(cliniko.requests) == asked
    assert "RAPPORT_CLINIKO_CONTACT_EMAIL" in refused.problem
    kept = state(unsettled, cliniko_clinic)
    assert kept.cursor == cursor and kept.failures == 1 and kept.claimed_at is None
    assert kept.next_poll_at == refused.at + timedelta(
        seconds=unsettled.config["POLL_INTERVAL_SECONDS"])
    with unsettled.app_context(), database.session() as db:
        shown = health.clinic_summary(db, db.get(Clinic, cliniko_clinic["id"]))
    assert shown["status"] == "active"
    assert "RAPPORT_CLINIKO_CONTACT_EMAIL" in shown["last_poll_problem"]

    mended = poll(cliniko_app, cliniko, cliniko_clinic, force=True)
    drain(cliniko_app)
    assert mended.problem is None and mended.statuses == {"completed": 1}
    with cliniko_app.app_context(), database.session() as db:
        assert db.scalars(select(Appointment.external_id).join(
            CheckIn, CheckIn.appointment_id == Appointment.id)).all() == [visit["id"]]
    assert state(cliniko_app, cliniko_clinic).last_problem is None


def test_what_a_poll_read_is_stored_once_with_its_cursor_on_either_database(
        app_factory, database_url, cliniko):
    app = app_factory(**cliniko_config(cliniko), DATABASE_URL=database_url)
    clinic = connect(app, cliniko)
    patient = cliniko.seed_patient()
    booked = [cliniko.seed_appointment(patient=patient,
                                       starts_at=cliniko.clock.now() + timedelta(days=n))
              for n in (1, 2, 3)]
    cliniko.clock.advance(minutes=2)
    before = state(app, clinic)

    first = poll(app, cliniko, clinic, force=True)
    saved = state(app, clinic)
    with app.app_context(), database.session() as db:  # as if that poll had not saved
        db.get(PollState, clinic["id"]).cursor = before.cursor if before else None
    again = poll(app, cliniko, clinic, force=True)
    drain(app)

    assert (first.stored, again.stored, again.read) == (3, 0, 3)
    assert saved.cursor and state(app, clinic).cursor == saved.cursor
    with app.app_context(), database.session() as db:
        rows = db.execute(select(InboxEvent.delivery_id, InboxEvent.processed_at)).all()
        ids = set(db.scalars(select(Appointment.external_id)))
    assert len(rows) == 3 and all(processed for _, processed in rows)
    assert ids == {record["id"] for record in booked}


def test_a_worker_carries_the_polls_on_at_the_pace_until_nothing_more_is_waiting(
        app_factory, live_cliniko):
    """The real queue and scheduler, on the real clock: the poll that left more waiting
    is run again when its time comes (RQ schedules to the second), and no sooner."""
    app = app_factory(**cliniko_config(live_cliniko))
    clinic = connect(app, live_cliniko)
    # Appointments with no patient: read, and left alone, so that nothing slows the worker.
    live_cliniko.seed_appointments(600, patient=None, first_start=utcnow() + timedelta(days=1),
                                   updated_at=utcnow() - timedelta(minutes=5))
    started = utcnow()
    with app.app_context():
        assert polling.poll_due() == 1
        worker.drain(forking=False, wait_for_scheduled=5 * 60 / PACE + 2)

    lists = live_cliniko.requests_to("GET", "/individual_appointments")
    assert len(lists) >= 6 and any(f.startswith("id:>") for f in lists[5].filters())
    done = state(app, clinic)
    assert done.last_polled_at - started >= timedelta(seconds=5 * 60 / PACE)
    assert json.loads(done.cursor)["changed"]["after"] is None  # read to its end
    assert done.next_poll_at - done.last_polled_at >= timedelta(
        seconds=app.config["POLL_INTERVAL_SECONDS"])
    assert inbox_rows(app) == []


def test_what_the_platform_lists_and_rapport_cannot_read_is_left_and_shown(
        cliniko_app, cliniko, cliniko_clinic):
    patient = cliniko.seed_patient()
    start = cliniko.clock.now() + timedelta(days=1)
    fine = cliniko.seed_appointment(patient=patient, starts_at=start)
    cliniko.seed_appointment(patient=patient, starts_at=start, minutes=-30)  # ends first
    cliniko.seed_appointment(patient=None, starts_at=start)
    cliniko.clock.advance(minutes=2)

    outcome = poll(cliniko_app, cliniko, cliniko_clinic)

    assert (outcome.read, outcome.stored) == (3, 1)
    assert outcome.ignored == {"the appointment has no patient": 1}
    assert "1 of what Cliniko listed could not be read" in outcome.problem
    assert "ends_at" in outcome.problem
    assert [d.split(":")[1] for d in inbox_rows(cliniko_app)] == [fine["id"]]
    assert state(cliniko_app, cliniko_clinic).last_problem == outcome.problem
    cliniko.clock.advance(minutes=10)
    assert poll(cliniko_app, cliniko, cliniko_clinic, force=True).problem is None
    assert state(cliniko_app, cliniko_clinic).last_problem is None
