"""Square end to end, against the local Square sandbox: signed booking webhooks in,
completion derived from the end time, one email, the note on the customer profile with
the therapist's text intact, and the talking points on the next booking."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from handlers import square
from handlers.base import ConnectProblem, InboundRequest
from plugin.clinics import records as clinics
from plugin.pipeline import write_back as writeback
from plugin.store import database as storage
from plugin.store.models import Appointment, CheckIn, Clinic, WriteBack
from plugin.tasks import queue
from tests.support import clock
from tests.support.square import (
    NOW,
    SIGNATURE_KEY,
    SQUARE,
    SQUARE_AT_ONCE,
    THERAPIST_NOTE,
    add_square_clinic,
    square_credentials,
)
from tests.support.square import send_booking_event as send
from tests.support.survey import answer_last_check_in


@pytest.fixture
def square_clinic(square_app, square_sandbox):
    """A clinic in manual mode: its own subscription, key and notification URL."""
    return add_square_clinic(square_app, square_sandbox)


def invitations(app):
    with app.app_context(), storage.session() as db:
        return list(db.scalars(select(CheckIn).order_by(CheckIn.id)))


@pytest.fixture
def square_visit(square_sandbox):
    """Sam's visit that ended half an hour ago."""
    customer = square_sandbox.seed_customer(
        given_name="Sam", email_address="sam@example.com", note=THERAPIST_NOTE
    )
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(minutes=90), duration_minutes=60
    )
    return customer, booking


def test_the_whole_loop_on_square(square_app, square_sandbox, square_clinic, square_visit,
                                  square_drain, mailbox):
    app, _ = square_app
    customer, booking = square_visit
    response, _ = send(square_sandbox, square_clinic, "booking.created", booking["id"])
    assert response.status_code == 202
    square_drain()  # booked → end passed → re-read from Square → completed → one email

    assert square_sandbox.requests_to("GET", f"/v2/bookings/{booking['id']}")
    (message,) = mailbox.messages
    assert message["To"] == "sam@example.com"
    assert "Hi Sam," in message.get_body(("plain",)).get_content()

    assert answer_last_check_in(app, mailbox, 3, "Neck felt tight after.").status_code == 200
    square_drain()

    note = square_sandbox.customer(customer["id"])["note"]
    assert note.startswith(THERAPIST_NOTE)  # the therapist's text, byte for byte
    assert "[Rapport]" in note and note.rstrip().endswith("[/Rapport]")
    assert "Neck felt tight after." in note
    attribute = square_sandbox.custom_attribute(customer["id"], "rapport-alliance")
    # The overall score and the trend's sparkline (one visit so far: one bar).
    assert attribute["value"] == "Alliance 50/100 ▅ — 3 talking points", attribute["value"]
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(WriteBack.status)) == "delivered"

    # Sam books again: the talking points go onto that booking's seller note.
    upcoming = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW + timedelta(days=7), seller_note="Room 2"
    )
    assert send(square_sandbox, square_clinic, "booking.created",
                upcoming["id"])[0].status_code == 202
    square_drain()
    seller_note = square_sandbox.booking(upcoming["id"])["seller_note"]
    assert seller_note.startswith("Room 2")
    assert "[Rapport]" in seller_note
    # Square tells Rapport of its own write (a new version); nothing is written twice.
    writes = len(square_sandbox.requests_to("PUT", f"/v2/bookings/{upcoming['id']}"))
    send(square_sandbox, square_clinic, "booking.updated", upcoming["id"])
    square_drain()
    assert len(square_sandbox.requests_to("PUT", f"/v2/bookings/{upcoming['id']}")) == writes == 1
    assert len(mailbox.messages) == 1


def test_answering_after_booking_again_also_notes_the_booking(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    app, _ = square_app
    customer, booking = square_visit
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    upcoming = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW + timedelta(days=3)
    )
    send(square_sandbox, square_clinic, "booking.created", upcoming["id"])
    square_drain()
    assert square_sandbox.booking(upcoming["id"])["seller_note"] == ""  # nothing open yet
    answer_last_check_in(app, mailbox, 3)
    square_drain()
    assert "[Rapport]" in square_sandbox.booking(upcoming["id"])["seller_note"]


# The therapist's own note on the next booking: French, multi-byte, an emoji, and long.
OWN_SELLER_NOTE = (
    "Cliente fidèle, préfère une pression légère sur la nuque 🌿. Allergie à l'huile "
    "d'amande : utiliser l'huile de pépins de raisin. Éviter le côté gauche du dos. "
) * 40


@pytest.mark.parametrize("own_length", [3900, 3750])
def test_a_long_seller_note_leaves_room_for_whole_talking_points(
    square_app, square_sandbox, square_visit, square_drain, mailbox, own_length
):
    """A French clinic whose therapist nearly fills the next booking's seller note: the
    block is the note rendered again for the room left — talking points before subscale
    lines, no word cut, the end marker alone on its line, the therapist's text intact."""
    app, _ = square_app
    clinic = add_square_clinic(square_app, square_sandbox, language="fr")
    customer, booking = square_visit
    send(square_sandbox, clinic, "booking.created", booking["id"])
    square_drain()
    comment = "Séance apaisante, mais l'épaule gauche était douloureuse 😣 — à revoir ?"
    assert answer_last_check_in(app, mailbox, 2, comment).status_code == 200
    square_drain()
    profile = square_sandbox.customer(customer["id"])["note"]
    full = profile[profile.index("[Rapport]"):].splitlines()  # the whole note, on the profile
    assert "Prochaine visite :" in full and any(line.startswith("Objectifs") for line in full)

    own = OWN_SELLER_NOTE[:own_length].rstrip()
    upcoming = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW + timedelta(days=7), seller_note=own
    )
    send(square_sandbox, clinic, "booking.created", upcoming["id"])
    square_drain()

    seller_note = square_sandbox.booking(upcoming["id"])["seller_note"]
    assert len(seller_note) <= square.SELLER_NOTE_LIMIT
    assert seller_note.startswith(own + "\n\n[Rapport]\n")  # the therapist's text, intact
    lines = seller_note[len(own) + 2 :].splitlines()
    assert (lines[0], lines[-1]) == ("[Rapport]", "[/Rapport]")
    assert seller_note.count("[/Rapport]") == 1
    # The most important talking point, whole.
    heading = lines.index("Prochaine visite :")
    assert lines[heading + 1] == full[full.index("Prochaine visite :") + 1]
    assert lines[heading + 1].startswith("- Commencez la prochaine séance")
    for line in lines:  # whole lines of the note, or one cut after a whole word
        if line not in full:
            assert line.endswith("…"), line
            assert any(whole.startswith(line[:-1] + " ") for whole in full), line
    assert not any(line.startswith(("Objectifs", "Tendance", "Commentaire du client"))
                   for line in lines)


@pytest.mark.parametrize(
    "status", ["NO_SHOW", "CANCELLED_BY_CUSTOMER", "CANCELLED_BY_SELLER", "DECLINED"]
)
def test_no_email_for_a_no_show_or_a_cancellation(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox, status
):
    app, _ = square_app
    _, booking = square_visit
    square_sandbox.update_booking(booking["id"], status=status)
    assert send(square_sandbox, square_clinic, "booking.updated",
                booking["id"])[0].status_code == 202
    square_drain()
    assert mailbox.messages == []
    assert invitations(app) == []


def test_cancelled_before_its_end_is_seen_when_square_is_asked_again(
    square_app, square_sandbox, square_clinic, square_drain, mailbox
):
    """Booked (webhook), then cancelled in Square with the event lost: the re-read at the
    end finds the cancellation and sends nothing."""
    app, _ = square_app
    customer = square_sandbox.seed_customer()
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(minutes=90)
    )
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_sandbox.update_booking(booking["id"], status="CANCELLED_BY_SELLER")
    square_drain()
    assert mailbox.messages == []
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Appointment.status)) == "cancelled"


def test_signed_with_the_wrong_key_or_for_another_url_is_refused(
    square_app, square_sandbox, square_clinic, square_visit
):
    app, url = square_app
    _, booking = square_visit
    event = square_sandbox.booking_event("booking.created", booking["id"])
    wrong_key = square_sandbox.deliver(
        square_clinic["url"], event, signature_key="not-the-key",
        notification_url=square_clinic["url"]
    )
    wrong_url = square_sandbox.deliver(
        square_clinic["url"], event, signature_key=SIGNATURE_KEY,
        notification_url=square_clinic["url"] + "/"
    )
    assert (wrong_key.status_code, wrong_url.status_code) == (401, 401)
    right = square_sandbox.deliver(
        square_clinic["url"], event, signature_key=SIGNATURE_KEY,
        notification_url=square_clinic["url"]
    )
    assert right.status_code == 202


def test_a_notification_url_registered_with_a_trailing_slash_is_delivered_to(
    square_app, square_sandbox, square_visit
):
    app, url = square_app
    registered = f"{url}/webhooks/square/harbour/"
    with app.app_context(), storage.session() as db:
        credentials = square_credentials(
            access_token=square_sandbox.personal_access_token,
            webhook_signature_key=SIGNATURE_KEY, notification_url=registered)
        clinics.create(db, name="Harbour Massage", platform="square",
                       credentials=credentials, key=SQUARE.clinic_key(credentials))
    event = square_sandbox.booking_event("booking.created", square_visit[1]["id"])
    answer = square_sandbox.deliver(registered, event, signature_key=SIGNATURE_KEY,
                                    notification_url=registered)
    assert answer.status_code == 202, answer.text


def test_duplicate_event_is_acknowledged_once(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    _, booking = square_visit
    event = square_sandbox.booking_event("booking.created", booking["id"])
    answers = [
        square_sandbox.deliver(
            square_clinic["url"], event, signature_key=SIGNATURE_KEY,
            notification_url=square_clinic["url"]
        ).status_code
        for _ in range(3)
    ]
    assert answers == [202, 200, 200]
    square_drain()
    assert len(mailbox.messages) == 1


def test_an_older_version_arriving_late_is_ignored(
    square_app, square_sandbox, square_clinic, square_visit, square_drain, mailbox
):
    app, _ = square_app
    customer, booking = square_visit
    accepted = square_sandbox.booking_event("booking.created", booking["id"])
    square_sandbox.update_booking(booking["id"], status="CANCELLED_BY_CUSTOMER")
    cancelled = square_sandbox.booking_event("booking.updated", booking["id"])
    for event in (cancelled, accepted):  # out of order
        square_sandbox.deliver(
            square_clinic["url"], event, signature_key=SIGNATURE_KEY,
            notification_url=square_clinic["url"]
        )
    square_drain()
    with app.app_context(), storage.session() as db:
        appointment = db.scalar(select(Appointment))
        assert (appointment.status, appointment.version) == ("cancelled", 1)
    assert mailbox.messages == []


def test_a_booking_long_past_gets_no_check_in(
    square_app, square_sandbox, square_clinic, square_drain, mailbox
):
    """The seller edits a booking from months ago (Square sends booking.updated for it,
    still ACCEPTED, the event dated now): no "thank you for your visit" for it, as the
    sweeper's two-day horizon already says for a check it lost."""
    app, _ = square_app
    customer = square_sandbox.seed_customer(given_name="Ola", email_address="ola@example.com")
    old = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(days=90), duration_minutes=60
    )
    assert send(square_sandbox, square_clinic, "booking.updated", old["id"])[0].status_code == 202
    square_drain()
    assert mailbox.messages == []
    assert invitations(app) == []
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Appointment.status)) == "booked"
    # Nothing left to ask Square about it either.
    assert not square_sandbox.requests_to("GET", f"/v2/bookings/{old['id']}")


def test_a_booking_told_of_before_it_ended_is_checked_however_late(
    square_app, square_sandbox, square_clinic, square_drain, mailbox
):
    """As in Square's documented example: booking.created dated 8 December for a visit on
    the 17th, delivered now. Square said it while the booking was current, so the visit,
    still ACCEPTED when asked, gets its one check-in."""
    customer = square_sandbox.seed_customer(given_name="Ola", email_address="ola@example.com")
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(days=90), duration_minutes=30
    )
    event = square_sandbox.booking_event("booking.created", booking["id"])
    event["created_at"] = (NOW - timedelta(days=99)).isoformat().replace("+00:00", "Z")
    response = square_sandbox.deliver(
        square_clinic["url"], event, signature_key=SIGNATURE_KEY,
        notification_url=square_clinic["url"]
    )
    assert response.status_code == 202
    square_drain()
    assert [message["To"] for message in mailbox.messages] == ["ola@example.com"]


def test_malformed_body_is_400_naming_the_field(square_app, square_sandbox, square_clinic,
                                                square_visit):
    _, booking = square_visit
    event = square_sandbox.booking_event("booking.created", booking["id"])
    del event["data"]["object"]["booking"]["start_at"]
    response = square_sandbox.deliver(
        square_clinic["url"], event, signature_key=SIGNATURE_KEY,
        notification_url=square_clinic["url"]
    )
    assert response.status_code == 400
    assert response.json()["field"] == "data.object.booking.start_at"


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


def test_manual_mode_needs_the_key_in_the_notification_url(square_app, square_sandbox):
    app, url = square_app
    with app.app_context():
        credentials = square_credentials(
            access_token="t",
            webhook_signature_key="k",
            notification_url=f"{url}/somewhere-else",
        )
    with (
        app.app_context(),
        pytest.raises(ConnectProblem, match="/webhooks/square/<clinic key>"),
    ):
        SQUARE.clinic_key(credentials)


def test_a_request_keeps_its_headers_for_the_record(square_app, square_sandbox, square_clinic,
                                                    square_visit):
    """What the inbox stored is exactly what Square signed (re-verifiable later)."""
    from handlers import square
    from plugin.store.models import InboxEvent

    app, _ = square_app
    _, booking = square_visit
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    with app.app_context(), storage.session() as db:
        row = db.scalar(select(InboxEvent))
        square.verify(
            InboundRequest(body=row.body, headers=row.headers),
            {"signature_keys": [SIGNATURE_KEY], "notification_url": square_clinic["url"]},
        )


def test_a_customer_unsubscribed_in_square_gets_no_email(
    square_app, square_sandbox, square_clinic, square_drain, mailbox
):
    app, _ = square_app
    customer = square_sandbox.seed_customer(preferences={"email_unsubscribed": True})
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(minutes=90)
    )
    send(square_sandbox, square_clinic, "booking.created", booking["id"])
    square_drain()
    assert mailbox.messages == []
    (invitation,) = invitations(app)
    assert invitation.status == "skipped"
    assert "unsubscribed" in invitation.reason


# --- bookings a check cannot settle are not asked about in a loop ----------------------


def sweep_in(app, **later):
    """The sweeper's run that far from now (time moved by its argument, not by sleeping)."""
    from plugin.pipeline import sweeper

    with app.app_context():
        return sweeper.sweep(now=datetime.now(timezone.utc) + timedelta(**later))


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


def test_429_without_retry_after_backs_off_exponentially(app_factory, square_sandbox, caplog):
    """check_completion (and every job that returns ``retry_later``) waits about the
    first interval, then twice, then four times as long — not the same each time."""
    import time

    from plugin.tasks import queue, worker

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
