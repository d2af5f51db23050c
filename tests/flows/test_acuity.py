"""Acuity Scheduling end to end, against the local Acuity (tests/sandboxes/acuity.py) over
HTTP: the admin adds the clinic with ``rapport clinic add --platform acuity``, Rapport
registers the clinic's webhook URL through Acuity's Webhooks API, the stand-in delivers
signed form posts naming an appointment, Rapport reads the appointment before acting, the
worker drains, the email arrives over SMTP, the answers come back into Acuity's notes.

Acuity delivers only to port 443 or 80, so Rapport says it is at ``http://rapport.test``
and the stand-in routes that address to the socket Rapport serves on, as a proxy would.
Every test ends with the stand-in having refused no request Rapport sent as malformed, and
with every answer it gave inside the specification (checked as it stops)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import requests

from handlers import acuity as adapter
from plugin.clinics import records
from plugin.store import database as storage
from tests.sandboxes.acuity import AcuitySandbox
from tests.support import flows
from tests.support.clock import drainer
from tests.support.survey import answer_last_check_in

RAPPORT = "http://rapport.test"
OWN_NOTES = "Prefers firm pressure.\r\nAvoid the left knee — old injury 🌿\n"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def acuity():
    with AcuitySandbox() as stand_in:
        yield stand_in
        # A refusal for being malformed: a request the specification refuses (a refused
        # API key is the point of one test).
        assert [(r.method, r.path, why) for r, why in stand_in.rejected
                if r.status != 401] == []


@pytest.fixture
def served(app_factory, acuity):
    for app, url in flows.serving(app_factory, base_url=RAPPORT,
                                  ACUITY_BASE_URL=acuity.base_url):
        acuity.route(RAPPORT, url)
        yield app, url


@pytest.fixture
def rapport(served, acuity):
    return flows.rapport_command(served[0], {"ACUITY_BASE_URL": acuity.base_url})


@pytest.fixture
def drain(served):
    return drainer(served[0])


def add_clinic(rapport, acuity, *extra: str) -> dict:
    created = flows.added(rapport("clinic", "add", "--name", "Harbour Massage", "--platform",
                                  "acuity", "--user-id", acuity.user_id, "--api-key",
                                  acuity.api_key, *extra, "--json"))
    configured = rapport("clinic", "configure", created["key"], "--send-delay-minutes", "0",
                         "--window", "00:00-24:00", "--grace-minutes", "0")
    assert configured.exit_code == 0, configured.output
    return created


@pytest.fixture
def harbour(rapport, acuity):
    return add_clinic(rapport, acuity)


def visit(acuity, *, ended_ago=timedelta(minutes=30), notes="", **person) -> dict:
    start = NOW - ended_ago - timedelta(minutes=60)
    return acuity.seed_appointment(start=start, notes=notes, **person)


@pytest.fixture
def sam(acuity):
    return acuity.seed_client(first_name="Sam", last_name="Rivera", email="sam@example.com",
                              notes=OWN_NOTES)


def reads(acuity, appointment) -> int:
    return len(acuity.requests_to("GET", f"/api/v1/appointments/{appointment['id']}"))


def test_adding_the_clinic_registers_its_webhooks(served, acuity, rapport):
    app, _ = served
    created = add_clinic(rapport, acuity)
    url = f"{RAPPORT}/webhooks/acuity/{created['key']}"
    assert created["webhook_url"] == url and created["webhook_registered"] is True
    assert created["timezone"] == "America/New_York"  # the account's, from Acuity
    assert sorted((w["event"], w["target"]) for w in acuity.webhooks) == sorted(
        (event, url) for event in adapter.EVENTS)
    with app.app_context(), storage.session() as db:
        row = records.by_key(db, created["key"])
        sealed, stored = row.credentials, records.credentials(row)
    assert stored["webhook_url"] == url and len(stored["webhook_ids"]) == 3
    assert stored["api_key"] == acuity.api_key  # sealed at rest, opened here
    assert acuity.api_key not in str(sealed)
    plain = rapport("clinic", "add", "--name", "Harbour Two", "--platform", "acuity",
                    "--user-id", acuity.user_id, "--api-key", acuity.api_key)
    assert "registered the webhook URL in Acuity itself" in plain.output


def test_with_manual_webhooks_the_admin_is_told_where_to_paste_what(served, acuity, rapport,
                                                                    sam, drain, mailbox):
    created = add_clinic(rapport, acuity, "--manual-webhooks")
    assert created["webhook_registered"] is False and acuity.webhooks == []
    assert created["acuity_webhooks_place"] == "Acuity → Integrations → API → Webhooks (Set Up)"
    plain = rapport("clinic", "add", "--name", "Harbour Two", "--platform", "acuity",
                    "--user-id", acuity.user_id, "--api-key", acuity.api_key,
                    "--manual-webhooks").output
    assert "Paste the webhook URL in:" in plain and "Leave the field for any change" in plain
    acuity.paste_webhook_url(created["webhook_url"])
    booked = visit(acuity, email=sam["email"])
    assert [a.status_code for a in acuity.notify("scheduled", booked["id"])] == [202]
    drain()
    assert len(mailbox.messages) == 1


def test_a_url_acuity_cannot_deliver_to_saves_nothing(served, acuity):
    rapport = flows.rapport_command(served[0], {"ACUITY_BASE_URL": acuity.base_url,
                                                "BASE_URL": "https://rapport.test:8443"})
    result = rapport("clinic", "add", "--name", "Harbour", "--platform", "acuity",
                     "--user-id", acuity.user_id, "--api-key", acuity.api_key)
    assert result.exit_code == 1
    assert "port 443" in result.output and "nothing was saved" in result.output
    assert "No clinics yet" in rapport("clinic", "list").output


def test_wrong_credentials_save_nothing(served, acuity, rapport):
    result = rapport("clinic", "add", "--name", "Harbour", "--platform", "acuity",
                     "--user-id", acuity.user_id, "--api-key", "not-the-key")
    assert result.exit_code == 1 and "Integrations → API → View credentials" in result.output
    assert acuity.webhooks == [] and "No clinics yet" in rapport("clinic", "list").output


def test_a_visit_that_took_place_gets_one_email_and_its_answers_reach_acuity(
        served, acuity, harbour, sam, drain, mailbox):
    app, _ = served
    booked = visit(acuity, email=sam["email"], notes="Room 3.")
    assert [a.status_code for a in acuity.notify("scheduled", booked["id"])] == [202]
    drain()
    assert reads(acuity, booked) == 1  # the webhook names the appointment: read once
    (message,) = mailbox.messages
    assert message["To"] == "sam@example.com"
    assert "Hi Sam," in message.get_body(("plain",)).get_content()
    assert answer_last_check_in(app, mailbox, 3, "Knee felt fine.").status_code == 200
    drain()
    notes = acuity.client("Sam", "Rivera")["notes"]
    assert notes.startswith(OWN_NOTES)  # the therapist's text, byte for byte
    assert notes.count("[Rapport]") == 1 and "Knee felt fine." in notes
    assert acuity.appointment(booked["id"])["notes"] == "Room 3."
    assert [w.status for w in flows.write_backs(app)] == ["delivered"]

    # Sam books again: the talking points go into that appointment's notes, once.
    upcoming = acuity.seed_appointment(start=NOW + timedelta(days=7), email=sam["email"],
                                       notes="Bring the wedge pillow.")
    acuity.notify("scheduled", upcoming["id"])
    drain()
    ahead = acuity.appointment(upcoming["id"])["notes"]
    assert ahead.startswith("Bring the wedge pillow.") and ahead.count("[Rapport]") == 1
    acuity.notify("rescheduled", upcoming["id"])  # moved: the note is not written again
    drain()
    assert len(acuity.requests_to("PUT", f"/api/v1/appointments/{upcoming['id']}")) == 1
    assert len(acuity.requests_to("PUT", "/api/v1/clients")) == 1
    assert len(mailbox.messages) == 1


def test_a_visit_still_ahead_is_checked_at_its_end(served, acuity, harbour, sam, drain,
                                                   mailbox):
    """Acuity never says "completed": the booking is read again once it has ended. Rapport's
    clock is not moved by a test, so the visit's time is: it is moved into the past
    quietly, as if its hour had come, and the completion check made due."""
    app, _ = served
    booked = acuity.seed_appointment(start=NOW + timedelta(hours=1), email=sam["email"])
    acuity.notify("scheduled", booked["id"])
    drain()
    assert reads(acuity, booked) == 1 and mailbox.messages == []
    asked_at = datetime.now(UTC)
    (ahead,) = flows.due_now(app)  # the check, scheduled for the end (no grace here)
    # The visit ends at NOW + 2 h, NOW being when this module was imported: measured
    # from then, not from this moment, however long the tests before this one took.
    due = asked_at + timedelta(seconds=ahead)
    assert abs((due - (NOW + timedelta(hours=2))).total_seconds()) <= 5
    acuity.reschedule(booked["id"], NOW - timedelta(hours=2))
    drain()
    assert reads(acuity, booked) == 2
    (message,) = mailbox.messages
    assert message["To"] == "sam@example.com"


def test_a_visit_cancelled_before_its_end_is_not_read_again(served, acuity, harbour, sam,
                                                            drain, mailbox):
    app, _ = served
    booked = acuity.seed_appointment(start=NOW + timedelta(hours=1), email=sam["email"])
    acuity.notify("scheduled", booked["id"])
    acuity.cancel(booked["id"])
    acuity.notify("canceled", booked["id"])
    drain()
    flows.due_now(app)
    drain()
    assert reads(acuity, booked) == 2  # one per delivery, none for the check
    assert mailbox.messages == [] and [a.status for a in flows.appointments(app)] == [
        "cancelled"]


def test_five_deliveries_of_one_event_make_one_check_in(served, acuity, harbour, sam, drain,
                                                        mailbox):
    app, _ = served
    booked = visit(acuity, email=sam["email"])
    url = harbour["webhook_url"]
    body = acuity.form_body("scheduled", booked["id"])
    answers = [acuity.deliver(url, body) for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 200, 200, 200, 200]
    drain()
    assert reads(acuity, booked) == 1
    assert len(flows.check_ins(app)) == 1 and len(mailbox.messages) == 1


@pytest.mark.parametrize("how", ["cancelled", "no_show", "cancelled_after_the_start"])
def test_no_email_for_a_cancellation_or_a_no_show(served, acuity, harbour, sam, drain, mailbox,
                                                  how):
    """Acuity has no late cancellation: one made after the start is a cancellation."""
    app, _ = served
    ended = timedelta(minutes=-30) if how == "cancelled_after_the_start" else timedelta(0)
    booked = visit(acuity, email=sam["email"], ended_ago=ended)
    acuity.cancel(booked["id"], no_show=how == "no_show")
    acuity.notify("canceled", booked["id"])
    drain()
    flows.due_now(app)
    drain()
    assert mailbox.messages == [] and flows.check_ins(app) == []
    assert [a.status for a in flows.appointments(app)] == [
        "no_show" if how == "no_show" else "cancelled"]


def test_a_changed_event_never_undoes_a_cancellation_or_a_no_show(served, acuity, harbour,
                                                                  sam, drain, mailbox):
    """``changed`` says nothing of the state (it is parsed as booked): the read decides,
    and when the read fails the event is dropped rather than applied."""
    app, _ = served
    no_show = visit(acuity, email=sam["email"])
    cancelled = visit(acuity, email=sam["email"], ended_ago=timedelta(hours=3))
    acuity.cancel(no_show["id"], no_show=True)
    acuity.cancel(cancelled["id"])
    url = harbour["webhook_url"]
    for booked in (no_show, cancelled):
        acuity.deliver(url, acuity.form_body("canceled", booked["id"]))
    drain()
    acuity.edit_notes(no_show["id"], "Called to apologise.")
    acuity.deliver(url, acuity.form_body("changed", no_show["id"]))
    acuity.fail_next(f"/api/v1/appointments/{cancelled['id']}", 404, method="GET")
    acuity.deliver(url, acuity.form_body("changed", cancelled["id"]))
    drain()
    flows.due_now(app)
    drain()
    assert {a.external_id: a.status for a in flows.appointments(app)} == {
        str(no_show["id"]): "no_show", str(cancelled["id"]): "cancelled"}
    assert mailbox.messages == [] and flows.check_ins(app) == []


def test_an_old_booking_edited_long_after_gets_no_thank_you(served, acuity, harbour, sam,
                                                            drain, mailbox):
    app, _ = served
    old = visit(acuity, email=sam["email"], ended_ago=timedelta(days=10))
    acuity.edit_notes(old["id"], "Paid in cash.")
    acuity.deliver(harbour["webhook_url"], acuity.form_body("changed", old["id"]))
    drain()
    assert mailbox.messages == [] and flows.check_ins(app) == []
    (row,) = flows.appointments(app)
    assert row.status == "completed" and "too long past" in row.check_detail


def test_signatures_are_the_clinics_own_and_rotation_keeps_both(served, acuity, rapport,
                                                                harbour, sam):
    app, url = served
    booked = visit(acuity, email=sam["email"])
    body = acuity.form_body("scheduled", booked["id"])
    own_url = f"{url}/webhooks/acuity/{harbour['key']}"
    assert acuity.deliver(own_url, body, api_key="not-the-key").status_code == 401
    unsigned = requests.post(own_url, data=body, timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    # Another clinic, another Acuity account: a body signed for one never reaches the other.
    with app.app_context(), storage.session() as db:
        other = records.create(db, name="Elsewhere", platform="acuity", key="elsewhere",
                               credentials={"user_id": "222", "api_key": "k-elsewhere",
                                            "previous_api_keys": []})
        assert other.webhook_url.endswith("/webhooks/acuity/elsewhere")
    assert acuity.deliver(f"{url}/webhooks/acuity/elsewhere", body).status_code == 401
    assert acuity.deliver(f"{url}/webhooks/acuity/nobody", body).status_code == 404
    assert flows.inbox(app) == []

    old_key = acuity.api_key
    new_key = acuity.rotate_api_key()
    changed = rapport("clinic", "acuity", harbour["key"], "--api-key", new_key)
    assert "2 API key(s) accepted" in changed.output
    assert acuity.deliver(own_url, body, api_key=old_key).status_code == 202
    assert acuity.deliver(own_url, acuity.form_body("rescheduled", booked["id"]),
                          api_key=new_key).status_code == 202


@pytest.mark.parametrize("body, field", [
    ({"action": "scheduled", "id": "abc"}, "id"),
    ({"action": "scheduled", "calendarID": "1"}, "id"),
    ({"id": "1101"}, "action"),
])
def test_a_signed_but_malformed_body_is_400_naming_the_field(served, acuity, harbour, body,
                                                             field):
    app, url = served
    raw = urlencode(body).encode()
    answer = acuity.deliver(f"{url}/webhooks/acuity/{harbour['key']}", raw)
    assert (answer.status_code, answer.json()["field"]) == (400, field)
    assert flows.inbox(app) == []


def test_a_refused_api_key_needs_reconnecting_until_a_new_one_is_given(
        served, acuity, rapport, harbour, sam, drain, mailbox):
    app, _ = served
    booked = visit(acuity, email=sam["email"])
    acuity.notify("scheduled", booked["id"])
    drain()
    new_key = acuity.rotate_api_key()  # regenerated in Acuity: the stored one stops working
    answer_last_check_in(app, mailbox, 4)
    drain()
    clinic = flows.clinic(app, harbour["key"])
    assert clinic.status == "needs_reconnecting" and "401" in clinic.status_detail
    assert [w.status for w in flows.write_backs(app)] == ["paused"]
    listed = rapport("clinic", "list").output
    assert "NEEDS RECONNECTING" in listed
    assert f"rapport clinic acuity {harbour['key']} --api-key NEW" in listed
    assert acuity.client("Sam", "Rivera")["notes"] == OWN_NOTES
    reconnected = rapport("clinic", "acuity", harbour["key"], "--api-key", new_key)
    assert "Reconnected; 1 write-back(s) resumed." in reconnected.output
    drain()
    notes = acuity.client("Sam", "Rivera")["notes"]
    assert notes.startswith(OWN_NOTES) and notes.count("[Rapport]") == 1


@pytest.mark.parametrize("status", [429, 500])
def test_a_throttled_or_failing_acuity_is_retried_and_written_once(
        served, acuity, harbour, sam, drain, mailbox, status):
    app, _ = served
    booked = visit(acuity, email=sam["email"])
    acuity.notify("scheduled", booked["id"])
    drain()
    acuity.fail_next("/api/v1/clients", status, method="PUT", headers={"Retry-After": "40"})
    answer_last_check_in(app, mailbox, 4)
    drain()
    assert acuity.client("Sam", "Rivera")["notes"] == OWN_NOTES
    (write_back,) = flows.write_backs(app)
    assert write_back.status == "pending" and str(status) in write_back.last_error
    ahead = flows.due_now(app)
    if status == 429:  # Acuity's Retry-After, when it sends one, is honoured
        assert ahead and min(ahead) >= 35
    drain()
    notes = acuity.client("Sam", "Rivera")["notes"]
    assert notes.startswith(OWN_NOTES) and notes.count("[Rapport]") == 1
    assert [r.status for r in acuity.requests_to("PUT", "/api/v1/clients")] == [status, 200]


def test_a_delivery_waiting_for_a_disconnected_clinic_calls_nothing(served, acuity, rapport,
                                                                    harbour, sam, drain):
    app, _ = served
    with app.app_context(), storage.session() as db:
        records.mark_needs_reconnecting(records.by_key(db, harbour["key"]), "test")
    booked = visit(acuity, email=sam["email"])
    acuity.notify("scheduled", booked["id"])
    drain()
    assert reads(acuity, booked) == 0
    assert [row.processed_at for row in flows.inbox(app)] == [None]
