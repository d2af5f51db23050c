"""Square refusing Rapport (401, 403, 429) at each step: the write-back, the completion
check, the reminder; the clinic marked, retries backed off, nothing written twice."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from handlers import square
from plugin.clinics import records as clinics
from plugin.pipeline import write_back as writeback
from plugin.store import database as storage
from plugin.store.models import CheckIn, Clinic, WriteBack
from plugin.tasks import queue
from tests.support.clock import sweep_in
from tests.support.rows import invitations
from tests.support.square import (
    NOW,
    SIGNATURE_KEY,
    SQUARE_AT_ONCE,
    THERAPIST_NOTE,
    square_credentials,
)
from tests.support.square import send_booking_event as send
from tests.support.survey import answer_last_check_in


def test_401_from_square_marks_the_clinic_and_stops_retrying(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    app, _ = square_app
    customer, booking = square_visit
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    square_sandbox.fail_next(f"/v2/customers/{customer['id']}", 401, times=1)
    answer_last_check_in(app, mailbox, 4)
    square_drain(within=3)
    with app.app_context(), storage.session() as db:
        clinic_row = db.scalar(select(Clinic))
        write_back = db.scalar(select(WriteBack))
        assert clinic_row.status == "needs_reconnecting"
        assert "Square" in clinic_row.status_detail or "401" in clinic_row.status_detail
        assert (write_back.status, write_back.attempts) == ("paused", 1)
    assert square_sandbox.customer(customer["id"])["note"] == THERAPIST_NOTE


def test_a_permission_refused_at_write_back_waits_for_reconnecting(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    app, _ = square_app
    customer, booking = square_visit
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    square_sandbox.fail_next(f"/v2/customers/{customer['id']}", 403, code="INSUFFICIENT_SCOPES")
    answer_last_check_in(app, mailbox, 4)
    square_drain(within=3)
    with app.app_context(), storage.session() as db:
        clinic_row = db.scalar(select(Clinic))
        assert clinic_row.status == "needs_reconnecting"
        assert "INSUFFICIENT_SCOPES" in clinic_row.status_detail
        assert "connect again and allow everything Rapport asks for" in clinic_row.status_detail
        assert db.scalar(select(WriteBack)).status == "paused"
    assert square_sandbox.customer(customer["id"])["note"] == THERAPIST_NOTE
    # What `rapport clinic square KEY --access-token …` does once the seller reconnects.
    with app.app_context():
        with storage.session() as db:
            clinic_row = db.scalar(select(Clinic))
            clinics.mark_connected(clinic_row)
            clinic_id = clinic_row.id
        assert writeback.resume(clinic_id) == 1
    square_drain()
    note = square_sandbox.customer(customer["id"])["note"]
    assert note.startswith(THERAPIST_NOTE) and note.count("[Rapport]") == 1


def test_429_backs_off_then_writes_once(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    app, _ = square_app
    customer, booking = square_visit
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    square_sandbox.fail_next(f"/v2/customers/{customer['id']}", 429, headers={"Retry-After": "1"})
    answer_last_check_in(app, mailbox, 4)
    square_drain(within=10)
    assert square_sandbox.customer(customer["id"])["note"].count("[Rapport]") == 1
    puts = square_sandbox.requests_to("PUT", f"/v2/customers/{customer['id']}")
    assert len(puts) == 1


def test_429_without_retry_after_backs_off_exponentially(app_factory, square_sandbox, caplog):
    """check_completion (and every job that returns ``retry_later``) waits about the
    first interval, then twice, then four times as long — not the same each time."""
    import time

    from plugin.tasks import worker

    app = app_factory(SQUARE_ENVIRONMENT="sandbox", SQUARE_BASE_URL=square_sandbox.base_url,
                      JOB_RETRY_INTERVALS=[60, 60, 60, 60])
    url = "https://rapport.example/webhooks/square/harbour"
    with app.app_context(), storage.session() as db:
        credentials = square_credentials(
            access_token=square_sandbox.personal_access_token,
            webhook_signature_key=SIGNATURE_KEY, notification_url=url)
        clinics.create(db, name="Harbour", platform="square", credentials=credentials,
                       key="harbour", settings={"timing": SQUARE_AT_ONCE})
    customer = square_sandbox.seed_customer()
    booking = square_sandbox.seed_booking(customer_id=customer["id"],
                                          start_at=NOW - timedelta(minutes=90))
    square_sandbox.fail_next(f"/v2/bookings/{booking['id']}", 429, times=3, method="GET")
    body = json.dumps(square_sandbox.booking_event("booking.created", booking["id"])).encode()
    headers = square.sign(body, signature_key=SIGNATURE_KEY, notification_url=url)
    assert app.test_client().post("/webhooks/square/harbour", data=body,
                                  headers=headers).status_code == 202

    delays = []
    with app.app_context():
        registry = queue.queue().scheduled_job_registry
        for _ in range(3):
            worker.drain(forking=False)
            (job_id,) = registry.get_job_ids()
            delays.append(registry.get_scheduled_time(job_id).timestamp() - time.time())
            job = queue.queue().fetch_job(job_id)
            registry.schedule(job, datetime.now(timezone.utc))  # due now: time moved
    assert len(square_sandbox.requests_to("GET", f"/v2/bookings/{booking['id']}")) == 3
    # Each wait says why, for whoever reads the worker's log.
    assert caplog.text.count("completion.retry: appointment") == 3
    assert "429 RATE_LIMITED" in caplog.text
    first, second, third = delays
    assert 25 <= first <= 60
    assert 55 <= second <= 120
    assert 115 <= third <= 240


def test_a_reminder_refused_by_square_marks_the_clinic_and_stops_there(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    from plugin.pipeline import sending as follow_up

    app, _ = square_app
    customer, booking = square_visit
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    (invitation,) = invitations(app)
    with app.app_context(), storage.session() as db:  # the reminder's time has come
        db.get(CheckIn, invitation.id).remind_at = datetime.now(timezone.utc)
    customer_path = f"/v2/customers/{customer['id']}"
    square_sandbox.fail_next(customer_path, 401, method="GET")
    with app.app_context():
        follow_up.remind(invitation.id)  # no exception: nothing for RQ to retry
        with storage.session() as db:
            assert db.scalar(select(Clinic.status)) == "needs_reconnecting"
        asked = len(square_sandbox.requests_to("GET", customer_path))
        follow_up.remind(invitation.id)  # run again (the sweeper): Square is not asked
    assert len(square_sandbox.requests_to("GET", customer_path)) == asked
    assert len(mailbox.messages) == 1
    assert invitations(app)[0].reminded_at is None  # sent once the clinic reconnects


@pytest.mark.parametrize("status", ["NO_SHOW", "CANCELLED_BY_SELLER"])
def test_no_reminder_once_the_seller_marks_the_visit_a_no_show_or_cancelled(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox, status
):
    from plugin.pipeline import sending as follow_up

    app, _ = square_app
    _, booking = square_visit
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    assert len(mailbox.messages) == 1  # the check-in went out once the visit had ended
    # The next morning the seller marks the visit in Square; Square tells Rapport.
    square_sandbox.update_booking(booking["id"], status=status)
    assert send(square_sandbox, square_clinic, "booking.updated",
                booking["id"])[0].status_code == 202
    square_drain()
    (invitation,) = invitations(app)
    with app.app_context(), storage.session() as db:  # the reminder's time has come
        db.get(CheckIn, invitation.id).remind_at = datetime.now(timezone.utc)
    with app.app_context():
        follow_up.remind(invitation.id)
    assert len(mailbox.messages) == 1
    assert invitations(app)[0].reminded_at is None
    assert invitations(app)[0].remind_at is None  # the sweeper does not ask again


@pytest.mark.parametrize("change", ["gone", "unsubscribed", "no_email", "opted_out"])
def test_a_reminder_that_cannot_go_is_not_asked_about_every_sweep(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox, change
):
    """Square no longer has the customer, or they unsubscribed (in Square or with the
    check-in's link) or lost their address since the check-in went out: no reminder,
    and the sweeps that follow neither ask Square again every minute nor queue it."""
    app, _ = square_app
    customer, booking = square_visit
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    assert len(mailbox.messages) == 1
    customer_path = f"/v2/customers/{customer['id']}"
    if change == "gone":
        square_sandbox.fail_next(customer_path, 404, times=10, method="GET")
    elif change == "unsubscribed":
        square_sandbox.update_customer(customer["id"], preferences={"email_unsubscribed": True})
    elif change == "no_email":
        square_sandbox.update_customer(customer["id"], email_address="")
    else:
        from tests.support.survey import survey_path

        path = f"{survey_path(mailbox.messages[-1])}/unsubscribe"
        assert app.test_client().post(path).status_code == 200
    (invitation,) = invitations(app)
    with app.app_context(), storage.session() as db:  # the reminder's time has come
        db.get(CheckIn, invitation.id).remind_at = NOW - timedelta(minutes=10)
    asked = len(square_sandbox.requests_to("GET", customer_path))
    for minutes in (0, 1, 2):
        counts = sweep_in(app, minutes=minutes)
        square_drain()
    assert len(square_sandbox.requests_to("GET", customer_path)) == asked + (
        change != "opted_out")
    assert counts["reminders"] == 0
    assert len(mailbox.messages) == 1
    assert invitations(app)[0].remind_at is None
