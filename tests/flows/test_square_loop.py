"""Square end to end, against the local Square sandbox: signed booking webhooks in,
completion derived from the end time, one email, the note on the customer profile with
the therapist's text intact, and the talking points on the next booking."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers import square
from handlers.base import ConnectProblem, InboundRequest
from plugin.clinics import records as clinics
from plugin.store import database as storage
from plugin.store.models import Appointment, WriteBack
from tests.support.rows import invitations
from tests.support.square import (
    NOW,
    SIGNATURE_KEY,
    SQUARE,
    THERAPIST_NOTE,
    add_square_clinic,
    square_credentials,
)
from tests.support.square import send_booking_event as send
from tests.support.survey import answer_last_check_in


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
    block is the note rendered again for the room left — its first line, then talking
    points before subscale lines, no word cut, the end marker alone on its line, the
    therapist's text intact."""
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
    # The first line, naming its first concern at least; then the most important talking
    # point, whole where there is room for it.
    assert lines[1].startswith(full[1].split(" ; ")[0])
    heading = lines.index("Prochaine visite :")
    if own_length < 3900:
        assert lines[heading + 1] == full[full.index("Prochaine visite :") + 1]
    assert lines[heading + 1].startswith("- Commencez la prochaine séance")
    for line in lines[2:]:  # whole lines of the note, or one cut after a whole word
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
