"""Square's jobs meeting each other and losing Redis, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from conftest import SQUARE_AT_ONCE
from sqlalchemy import create_engine, select, text
from test_square_loop import NOW, create_clinic, send

from plugin import storage
from plugin.models import Appointment, Clinic, Invitation


@pytest.fixture
def db_square_app(app_factory, square_sandbox, database_url):
    """Rapport on a real socket talking to the Square sandbox, on each database."""
    from servers import LiveServer

    holder = {}
    live = LiveServer(lambda environ, start: holder["app"](environ, start))
    app = app_factory(DATABASE_URL=database_url, BASE_URL=live.url,
                      SQUARE_ENVIRONMENT="sandbox", SQUARE_BASE_URL=square_sandbox.base_url,
                      SQUARE_APPLICATION_ID=square_sandbox.application_id,
                      SQUARE_APPLICATION_SECRET=square_sandbox.application_secret,
                      SQUARE_ACCESS_TOKEN=square_sandbox.personal_access_token)
    holder["app"] = app
    yield app, live.url
    live.stop()


def drain(app):
    from plugin import worker

    with app.app_context():
        worker.drain(forking=False)


def _waiting_for_a_lock(connection) -> bool:
    return bool(connection.execute(text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE NOT l.granted AND a.datname = current_database()")).scalar())


def test_a_completion_check_does_not_undo_a_no_show_saved_while_it_waited(
        db_square_app, square_sandbox, mailbox):
    """The check read the booking from Square (still accepted, ended); meanwhile a
    no-show event for it was being saved. The check, waiting for that row, must act on
    what was saved, not on what it had read before: no check-in for a no-show."""
    app, url = db_square_app
    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("SQLite's writers take turns for the whole transaction")
    clinic = create_clinic(db_square_app, square_sandbox)
    with app.app_context(), storage.session() as db:
        # The check is due later: it is run by hand below.
        db.scalar(select(Clinic)).settings = {
            "follow_up": {**SQUARE_AT_ONCE, "completion_grace_minutes": 120}}
    customer = square_sandbox.seed_customer(email_address="sam@example.com")
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(minutes=90), duration_minutes=60)
    send(square_sandbox, clinic, "booking.created", booking["id"])
    drain(app)
    with app.app_context(), storage.session() as db:
        appointment = db.scalar(select(Appointment))
        appointment_id, version = appointment.id, appointment.version
        assert appointment.status == "booked"

    engine = create_engine(app.config["DATABASE_URL"].replace(
        "postgresql://", "postgresql+psycopg://"))
    from plugin import jobs

    def check():
        with app.app_context():
            jobs.check_completion(appointment_id)

    with engine.connect() as other, engine.connect() as watcher:
        # A no-show event being saved: the row is locked and changed, not committed yet.
        other.execute(text("SELECT id FROM appointments WHERE id = :id FOR UPDATE"),
                      {"id": appointment_id})
        other.execute(text("UPDATE appointments SET status = 'no_show', version = :v "
                           "WHERE id = :id"), {"id": appointment_id, "v": version + 1})
        checking = threading.Thread(target=check)
        checking.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_a_lock(watcher) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_for_a_lock(watcher), "the check never waited for the row"
        other.commit()
        checking.join(10)
    engine.dispose()
    drain(app)
    with app.app_context(), storage.session() as db:
        appointment = db.get(Appointment, appointment_id)
        assert (appointment.status, appointment.version) == ("no_show", version + 1)
        assert db.scalars(select(Invitation.status)).all() == []
    assert mailbox.messages == []

