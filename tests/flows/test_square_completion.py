"""When a Square visit counts as completed: derived from its end time and asked of Square;
and the bookings a check cannot settle (gone, never accepted, out of reach) are not
asked about in a loop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from plugin.store import database as storage
from plugin.store.models import Appointment, Clinic
from plugin.tasks import queue
from tests.support import clock
from tests.support.clock import sweep_in
from tests.support.square import (
    NOW,
)
from tests.support.square import send_booking_event as send


def appointment_row(app):
    with app.app_context(), storage.session() as db:
        return db.scalar(select(Appointment))


def test_a_booking_square_no_longer_has_is_settled_not_fetched_every_sweep(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    app, _ = square_app
    _, booking = square_visit
    square_sandbox.fail_next(f"/v2/bookings/{booking['id']}", 404, method="GET")
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    row = appointment_row(app)
    assert row.status == "unconfirmed" and "404" in row.check_detail
    for minutes in (6, 7, 60, 24 * 60):
        sweep_in(app, minutes=minutes)
        square_drain()
    assert len(square_sandbox.requests_to("GET", f"/v2/bookings/{booking['id']}")) == 1
    assert mailbox.messages == []


def test_a_request_never_accepted_is_asked_again_later_and_later(
    square_app, square_sandbox, square_clinic, square_drain, mailbox
):
    app, _ = square_app
    customer = square_sandbox.seed_customer()
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(minutes=90), status="PENDING")
    path = f"/v2/bookings/{booking['id']}"
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    assert len(square_sandbox.requests_to("GET", path)) == 1
    first = appointment_row(app)
    assert (first.status, first.check_attempts) == ("booked", 1)
    # The sweeps of the next minutes leave it alone (the next check is 7.5–15 min away)…
    for minutes in (5, 6, 7):
        sweep_in(app, minutes=minutes)
        square_drain()
    assert len(square_sandbox.requests_to("GET", path)) == 1
    # …a sweep past that asks once more, and puts the next check further away.
    sweep_in(app, hours=2)
    square_drain()
    assert len(square_sandbox.requests_to("GET", path)) == 2
    second = appointment_row(app)
    assert second.check_attempts == 2
    assert (second.next_check_at - first.next_check_at).total_seconds() > 0
    assert mailbox.messages == []


def test_missing_scopes_show_on_the_clinic_instead_of_passing_for_gone(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    app, _ = square_app
    _, booking = square_visit
    square_sandbox.fail_next(f"/v2/bookings/{booking['id']}", 403, method="GET",
                             code="INSUFFICIENT_SCOPES")
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    with app.app_context(), storage.session() as db:
        clinic_row = db.scalar(select(Clinic))
        assert clinic_row.status == "needs_reconnecting"
        assert "INSUFFICIENT_SCOPES" in clinic_row.status_detail
    assert appointment_row(app).status == "booked"  # checked again once reconnected
    sweep_in(app, minutes=10)
    square_drain()
    assert len(square_sandbox.requests_to("GET", f"/v2/bookings/{booking['id']}")) == 1
    assert mailbox.messages == []


def test_a_completed_visit_stays_completed_when_square_says_accepted_again(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    app, _ = square_app
    _, booking = square_visit
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    assert appointment_row(app).status == "completed"
    # The therapist edits the past booking's note: Square sends ACCEPTED, a new version.
    square_sandbox.update_booking(booking["id"], seller_note="Ran five minutes over.")
    send(square_sandbox, square_clinic, "booking.updated", booking["id"])
    square_drain()
    row = appointment_row(app)
    assert (row.status, row.version) == ("completed", square_sandbox.booking(booking["id"])[
        "version"])
    assert len(mailbox.messages) == 1


def test_a_booking_ending_soon_is_checked_when_it_ends(
    square_app, square_sandbox, square_clinic, square_drain, mailbox
):
    """No visit that ended already: the check is scheduled for the end (grace 0 by
    configuration) and fires then, run by RQ's scheduler. Time is moved rather than
    waited for: the visit ends (in Square) and the job falls due (in RQ) at once."""
    app, _ = square_app
    customer = square_sandbox.seed_customer(given_name="Sam", email_address="sam@example.com")
    end = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=30)
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=end - timedelta(minutes=60), duration_minutes=60)
    path = f"/v2/bookings/{booking['id']}"
    assert send(square_sandbox, square_clinic, "booking.created",
                booking["id"])[0].status_code == 202
    square_drain()  # ingested; the check waits for the end
    assert square_sandbox.requests_to("GET", path) == [] and mailbox.messages == []
    (scheduled, due_in), = clock.scheduled(app).items()
    with app.app_context():
        assert scheduled.startswith(queue.qualified("check_completion-"))
    # Due at the end, not before: asked once the booking has ended.
    assert due_in == pytest.approx((end - datetime.now(timezone.utc)).total_seconds(), abs=2)

    # The half hour passes: the visit is over in Square, and the check falls due.
    square_sandbox.update_booking(booking["id"], start_at=NOW - timedelta(minutes=61))
    square_drain(within=31 * 60)
    assert len(square_sandbox.requests_to("GET", path)) == 1
    (message,) = mailbox.messages
    assert message["To"] == "sam@example.com"
    assert appointment_row(app).status == "completed"
