"""Square's jobs meeting each other, on SQLite and on PostgreSQL: a completion check and
an event saved while it waited, a booking note whose job Redis lost."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text

from plugin.store import database as storage
from plugin.store.models import Appointment, CheckIn, Clinic, Response
from tests.support.clock import drain as clock_drain
from tests.support.square import (
    NOW,
    SQUARE_AT_ONCE,
    THERAPIST_NOTE,
    add_square_clinic,
    serving_square,
)
from tests.support.square import send_booking_event as send
from tests.support.survey import answer_last_check_in
from tests.support.waiting import wait_until


@pytest.fixture
def db_square_app(app_factory, square_sandbox, database_url):
    """Rapport on a real socket talking to the Square sandbox, on each database."""
    yield from serving_square(app_factory, square_sandbox, DATABASE_URL=database_url)


def _waiting_for_a_lock(connection) -> bool:
    return bool(connection.execute(text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE NOT l.granted AND a.datname = current_database()")).scalar())


# On SQLite a writer holds the whole database for its transaction, so the check cannot
# have read the row before the event's writer took it: the race is PostgreSQL's.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_completion_check_does_not_undo_a_no_show_saved_while_it_waited(
        db_square_app, square_sandbox, mailbox):
    """The check read the booking from Square (still accepted, ended); meanwhile a
    no-show event for it was being saved. The check, waiting for that row, must act on
    what was saved, not on what it had read before: no check-in for a no-show."""
    app, url = db_square_app
    clinic = add_square_clinic(db_square_app, square_sandbox)
    with app.app_context(), storage.session() as db:
        # The check is due later: it is run by hand below.
        db.scalar(select(Clinic)).settings = {
            "timing": {**SQUARE_AT_ONCE, "completion_grace_minutes": 120}}
    customer = square_sandbox.seed_customer(email_address="sam@example.com")
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(minutes=90), duration_minutes=60)
    send(square_sandbox, clinic, "booking.created", booking["id"])
    clock_drain(app)
    with app.app_context(), storage.session() as db:
        appointment = db.scalar(select(Appointment))
        appointment_id, version = appointment.id, appointment.version
        assert appointment.status == "booked"

    engine = create_engine(app.config["DATABASE_URL"].replace(
        "postgresql://", "postgresql+psycopg://"))
    from plugin.pipeline.appointments import check_completion

    def check():
        with app.app_context():
            check_completion(appointment_id)

    with engine.connect() as other, engine.connect() as watcher:
        # A no-show event being saved: the row is locked and changed, not committed yet.
        other.execute(text("SELECT id FROM appointments WHERE id = :id FOR UPDATE"),
                      {"id": appointment_id})
        other.execute(text("UPDATE appointments SET status = 'no_show', version = :v "
                           "WHERE id = :id"), {"id": appointment_id, "v": version + 1})
        checking = threading.Thread(target=check)
        checking.start()
        wait_until(lambda: _waiting_for_a_lock(watcher), timeout=10,
                   what="the check to wait for the row")
        other.commit()
        checking.join(10)
    engine.dispose()
    clock_drain(app)
    with app.app_context(), storage.session() as db:
        appointment = db.get(Appointment, appointment_id)
        assert (appointment.status, appointment.version) == ("no_show", version + 1)
        assert db.scalars(select(CheckIn.status)).all() == []
    assert mailbox.messages == []


def test_a_booking_note_whose_job_redis_lost_is_written_after_a_sweep(
        db_square_app, square_sandbox, redis_conn, mailbox):
    """Sam answered, then booked again; the job putting the talking points on that
    booking was waiting for its retry (Square answered 503) when Redis lost every job.
    The sweeper queues it again, as it does every other step."""
    from datetime import datetime, timezone

    from plugin.pipeline import sweeper

    app, _ = db_square_app
    clinic = add_square_clinic(db_square_app, square_sandbox)
    customer = square_sandbox.seed_customer(
        given_name="Sam", email_address="sam@example.com", note=THERAPIST_NOTE)
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(minutes=90), duration_minutes=60)
    send(square_sandbox, clinic, "booking.created", booking["id"])
    clock_drain(app)
    assert answer_last_check_in(app, mailbox, 3).status_code == 200
    clock_drain(app)
    upcoming = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW + timedelta(days=7), seller_note="Room 2")
    square_sandbox.fail_next(f"/v2/bookings/{upcoming['id']}", 503, method="GET")
    send(square_sandbox, clinic, "booking.created", upcoming["id"])
    clock_drain(app)  # the note's read is refused; its retry waits in Redis…
    assert len(square_sandbox.requests_to("GET", f"/v2/bookings/{upcoming['id']}")) == 1
    redis_conn.flushdb()  # …and is lost
    with app.app_context():
        sweeper.sweep(now=datetime.now(timezone.utc) + timedelta(minutes=10))
    clock_drain(app)
    seller_note = square_sandbox.booking(upcoming["id"])["seller_note"]
    assert seller_note.startswith("Room 2") and "[Rapport]" in seller_note
    # Once written, later sweeps leave it alone.
    with app.app_context():
        sweeper.sweep(now=datetime.now(timezone.utc) + timedelta(minutes=20))
    clock_drain(app)
    assert len(square_sandbox.requests_to("PUT", f"/v2/bookings/{upcoming['id']}")) == 1


def test_the_sweeper_finds_a_lost_booking_note_behind_answers_without_talking_points(
        db_square_app, square_sandbox):
    """Upcoming bookings whose client's latest answers raised no talking point have
    nothing to carry: they must not fill the sweeper's batch ahead of one that does."""
    from datetime import datetime, timezone

    from plugin.pipeline import booking_notes

    app, _ = db_square_app
    add_square_clinic(db_square_app, square_sandbox)
    moment = datetime.now(timezone.utc)
    with app.app_context(), storage.session() as db:
        clinic_id = db.scalar(select(Clinic.id))
        for client, points, days in (("C-quiet", [], 3),
                                     ("C-open", ["Ask about the pressure."], 7)):
            visit = Appointment(clinic_id=clinic_id, external_id=f"past-{client}",
                                status="completed", client_external_id=client,
                                end_at=moment - timedelta(days=2),
                                completed_at=moment - timedelta(days=2))
            db.add(visit)
            db.flush()
            invitation = CheckIn(clinic_id=clinic_id, appointment_id=visit.id,
                                    client_external_id=client, status="answered")
            db.add(invitation)
            db.flush()
            db.add(Response(check_in_id=invitation.id, clinic_id=clinic_id,
                            client_external_id=client, instrument_id="x",
                            instrument_version="1", answers={},
                            result={"talking_points": points},
                            submitted_at=moment - timedelta(days=1)))
            booking = Appointment(clinic_id=clinic_id, external_id=f"next-{client}",
                                  status="booked", client_external_id=client,
                                  start_at=moment + timedelta(days=days),
                                  end_at=moment + timedelta(days=days, hours=1))
            db.add(booking)
        assert len(booking_notes.lost(db, moment, limit=1)) == 1
        assert len(booking_notes.lost(db, moment, limit=10)) == 1
