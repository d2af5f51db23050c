"""Mindbody end to end, against the local Mindbody (tests/sandboxes/mindbody.py) over HTTP:
``rapport clinic add --platform mindbody``, the application's subscription created and
activated (answering Mindbody's HEAD check), signed events to ``/webhooks/mindbody``, the
worker, the email over SMTP, the answers back in the client's and the next appointment's
notes. Every test ends with the stand-in having refused no request Rapport sent for being
malformed (refusals of a site that withdrew its approval are the point of one test)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from handlers.mindbody import api
from plugin.clinics.platforms import refresh_tokens
from plugin.pipeline import sweeper
from plugin.pipeline import write_back as writing
from plugin.store import database as storage
from plugin.store.models import Appointment, InboxEvent
from tests.sandboxes.mindbody import MindbodySandbox
from tests.support import flows
from tests.support.clock import drainer
from tests.support.survey import answer_last_check_in

SITE = "-99"
OTHER_SITE = "5551234"
# The front desk's own notes: CRLF, a multi-byte character and an emoji, byte for byte.
OWN_NOTES = "Prefers firm pressure.\r\nLeft shoulder: old injury — gentle 🌿\n"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def mindbody():
    api.forget_tokens()
    with MindbodySandbox(check_urls=True) as stand_in:
        stand_in.seed_site(OTHER_SITE)
        yield stand_in
        # A refusal for being malformed: a request the reference would refuse.
        malformed = [(r.method, r.path, why) for r, why in stand_in.rejected
                     if r.status not in (401, 403)]
        assert malformed == []
    api.forget_tokens()


def settings(mindbody) -> dict:
    return {"MINDBODY_API_KEY": mindbody.api_key,
            "MINDBODY_SOURCE_NAME": mindbody.source_name,
            "MINDBODY_SOURCE_PASSWORD": mindbody.source_password,
            "MINDBODY_WEBHOOKS_API_KEY": mindbody.webhooks_api_key,
            "MINDBODY_BASE_URL": mindbody.base_url,
            "MINDBODY_WEBHOOKS_BASE_URL": mindbody.base_url}


@pytest.fixture
def served(app_factory, mindbody):
    yield from flows.serving(app_factory, **settings(mindbody))


@pytest.fixture
def rapport(served, mindbody):
    return flows.rapport_command(served[0], settings(mindbody))


def add_clinic(rapport, site: str = SITE, name: str = "Harbour Massage") -> dict:
    created = flows.added(rapport("clinic", "add", "--name", name, "--platform", "mindbody",
                                  "--site-id", site, "--timezone", "Europe/London", "--json"))
    configured = rapport("clinic", "configure", created["key"], "--send-delay-minutes", "0",
                         "--window", "00:00-24:00", "--grace-minutes", "0")
    assert configured.exit_code == 0, configured.output
    return created


@pytest.fixture
def harbour(rapport):
    return add_clinic(rapport)


@pytest.fixture
def drain(served):
    return drainer(served[0])


@pytest.fixture
def sam(mindbody):
    return mindbody.seed_client(SITE, first_name="Sam", email="sam@example.com", notes=OWN_NOTES)


def visit(mindbody, web, *, ended_ago=timedelta(minutes=30), status="Arrived") -> dict:
    start = NOW - ended_ago - timedelta(minutes=60)
    return mindbody.seed_appointment(SITE, client_id=web["Id"], start=start, status=status)


def announce(mindbody, appointment, event="appointmentBooking.created"):
    """Deliver ``event`` about the appointment as it stands, to the subscription."""
    (subscription,) = [s for s in mindbody.subscriptions.values() if s["status"] == "Active"]
    body = mindbody.event(event, SITE, appointment["Id"])
    return mindbody.deliver(subscription["webhookUrl"], body,
                            signature_key=subscription["messageSignatureKey"]), body


def test_adding_the_clinic_creates_and_activates_the_subscription(served, mindbody, rapport):
    app, url = served
    created = add_clinic(rapport)
    assert created["site_id"] == SITE
    assert created["webhook_url"] == f"{url}/webhooks/mindbody"
    assert created["webhook_registered"] is True
    (subscription,) = mindbody.subscriptions.values()
    assert (subscription["status"], subscription["webhookUrl"]) == (
        "Active", f"{url}/webhooks/mindbody")
    assert set(subscription["eventIds"]) == {"appointmentBooking.created",
                                             "appointmentBooking.updated",
                                             "appointmentBooking.cancelled"}
    # Mindbody's check of the URL as the subscription was created: answered 2xx.
    assert mindbody.url_checks == [(f"{url}/webhooks/mindbody", 200)]
    assert flows.clinic(app, created["key"]).account_id == SITE
    # A second site shares the subscription; the same site twice is refused.
    add_clinic(rapport, OTHER_SITE, "Harbour North")
    assert len(mindbody.subscriptions) == 1
    again = rapport("clinic", "add", "--name", "Again", "--platform", "mindbody",
                    "--site-id", SITE)
    assert again.exit_code == 1 and "already connected to the clinic 'Harbour Massage'" in (
        again.output)
    plain = rapport("clinic", "list").output
    assert plain.count("[mindbody, Europe/London]  OK") == 2


def test_the_plain_output_says_what_happened_and_what_next(rapport):
    result = rapport("clinic", "add", "--name", "Harbour", "--platform", "mindbody",
                     "--site-id", SITE)
    assert result.exit_code == 0, result.output
    assert "Events arrive at:" in result.output and "/webhooks/mindbody" in result.output
    assert "Mindbody site ID:" in result.output
    assert "there is nothing to paste" in result.output
    assert "/public/v6/site/activationcode" in result.output


def test_a_site_not_yet_approved_is_not_added_and_its_activation_link_is_printed(
        mindbody, rapport):
    mindbody.seed_site(777, activated=False)
    result = rapport("clinic", "add", "--name", "New", "--platform", "mindbody",
                     "--site-id", "777", "--json")
    assert result.exit_code == 1
    code = mindbody.sites["777"]["activation_code"]
    assert f"ActivationLink/ActivateLink?code={code}" in result.output
    assert "nothing was saved" in result.output
    assert "No clinics yet" in rapport("clinic", "list").output
    mindbody.activate(777)
    assert flows.added(rapport("clinic", "add", "--name", "New", "--platform", "mindbody",
                               "--site-id", "777", "--json"))["site_id"] == "777"


def test_a_completed_visit_gets_one_email_and_its_answers_reach_mindbody(
        served, mindbody, harbour, sam, drain, mailbox):
    app, _ = served
    booked = visit(mindbody, sam)
    assert announce(mindbody, booked)[0].status_code == 202
    (sent,) = mindbody.set_status(SITE, booked["Id"], "Completed")  # delivered by Mindbody
    drain()
    (message,) = mailbox.messages
    assert message["To"] == "sam@example.com"
    assert "Hi Sam," in message.get_body(("plain",)).get_content()
    assert answer_last_check_in(app, mailbox, 3, "Shoulder felt much freer.").status_code == 200
    drain()

    notes = mindbody.client(SITE, sam["Id"])["Notes"]
    assert notes.startswith(OWN_NOTES)  # the front desk's text, byte for byte
    block = notes[len(OWN_NOTES):]
    assert block.lstrip("\n").startswith("[Rapport]") and block.rstrip().endswith("[/Rapport]")
    assert "Shoulder felt much freer." in block
    (update,) = mindbody.requests_to("POST", "/public/v6/client/updateclient")
    assert update.json["CrossRegionalUpdate"] is False
    assert [w.status for w in flows.write_backs(app)] == ["delivered"]

    # Sam books again: the talking points go into that appointment's notes, once.
    upcoming = mindbody.seed_appointment(SITE, client_id=sam["Id"], status="Booked",
                                         start=NOW + timedelta(days=7), notes="Room 2")
    announce(mindbody, upcoming)
    drain()
    appointment_notes = mindbody.appointment(SITE, upcoming["Id"])["Notes"]
    assert appointment_notes.startswith("Room 2") and appointment_notes.count("[Rapport]") == 1
    announce(mindbody, upcoming, "appointmentBooking.updated")  # edited again: nothing new
    with app.app_context():
        assert writing.resume(flows.clinic(app, harbour["key"]).id) == 0
    drain()
    assert len(mindbody.requests_to("POST", "/public/v6/appointment/updateappointment")) == 1
    assert len(mindbody.requests_to("POST", "/public/v6/client/updateclient")) == 1
    assert mindbody.client(SITE, sam["Id"])["Notes"].count("[Rapport]") == 1
    assert len(mailbox.messages) == 1


def test_five_deliveries_of_one_event_make_one_check_in(served, mindbody, harbour, sam, drain,
                                                        mailbox):
    app, _ = served
    booked = visit(mindbody, sam, status="Completed")
    (subscription,) = mindbody.subscriptions.values()
    body = mindbody.event("appointmentBooking.updated", SITE, booked["Id"])
    answers = [mindbody.deliver(subscription["webhookUrl"], body,
                                signature_key=subscription["messageSignatureKey"])
               for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 200, 200, 200, 200]
    assert {a.json()["status"] for a in answers[1:]} == {"duplicate"}
    drain()
    assert len(flows.inbox(app)) == 1 and len(flows.check_ins(app)) == 1
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize("status", ["NoShow", "LateCancelled", "Cancelled"])
def test_no_email_for_a_no_show_or_a_cancellation(served, mindbody, harbour, sam, drain,
                                                  mailbox, status):
    app, _ = served
    booked = visit(mindbody, sam, status="Booked")
    announce(mindbody, booked)
    (sent,) = mindbody.set_status(SITE, booked["Id"], status)
    drain()
    flows.due_now(app)  # the check at the end, had it still been booked
    drain()
    assert mailbox.messages == []
    assert flows.check_ins(app) == []
    (row,) = flows.appointments(app)
    assert row.status == ("no_show" if status == "NoShow" else "cancelled")


def test_a_visit_never_said_completed_by_an_event_is_read_at_its_end(
        served, mindbody, harbour, sam, drain, mailbox):
    """``reread_at_end``: the front desk completes the visit at checkout, and no
    Completed event comes; Rapport reads the appointment once it has ended."""
    app, _ = served
    booked = visit(mindbody, sam, status="Booked")
    announce(mindbody, booked)
    mindbody.edit_appointment(SITE, booked["Id"], Status="Arrived")
    drain()  # the check ran at once (the visit ended; no grace): not completed yet
    path = "/public/v6/appointment/staffappointments"
    assert len(mindbody.requests_to("GET", path)) == 1 and mailbox.messages == []
    (row,) = flows.appointments(app)
    ahead = (row.next_check_at - datetime.now(UTC)).total_seconds()
    assert 400 <= ahead <= 900  # asked again later, by the sweeper, not in a loop
    mindbody.edit_appointment(SITE, booked["Id"], Status="Completed")  # no event is sent
    with app.app_context():
        later = row.next_check_at + timedelta(seconds=app.config["SWEEP_AFTER_SECONDS"] + 1)
        assert sweeper.sweep(now=later)["completions"] == 1
    drain()
    assert len(mindbody.requests_to("GET", path)) == 2
    (message,) = mailbox.messages
    assert message["To"] == "sam@example.com"


def test_a_completed_visit_costs_no_read(served, mindbody, harbour, sam, drain, mailbox):
    """The event carries the status, the client's name and address: nothing is read."""
    booked = visit(mindbody, sam, status="Completed")
    connected = len(mindbody.requests)  # adding the clinic issued its staff token
    announce(mindbody, booked, "appointmentBooking.updated")
    drain()
    assert len(mailbox.messages) == 1
    assert mindbody.requests[connected:] == []


def test_a_visit_completed_long_after_it_ended_gets_no_thank_you(served, mindbody, harbour,
                                                                 sam, drain, mailbox):
    """The front desk tidies up last week's visits: Completed, dated now."""
    old = visit(mindbody, sam, ended_ago=timedelta(days=9), status="Completed")
    assert announce(mindbody, old, "appointmentBooking.updated")[0].status_code == 202
    drain()
    assert mailbox.messages == [] and flows.check_ins(served[0]) == []
    (row,) = flows.appointments(served[0])
    assert row.status == "completed" and "too long past" in row.check_detail


def test_an_event_without_an_email_reads_the_client(served, mindbody, harbour, drain, mailbox):
    ola = mindbody.seed_client(SITE, first_name="Ola", email="ola@example.com")
    booked = visit(mindbody, ola, status="Completed")
    (subscription,) = mindbody.subscriptions.values()
    body = mindbody.event("appointmentBooking.updated", SITE, booked["Id"])
    body["eventData"]["clientEmail"] = None
    mindbody.deliver(subscription["webhookUrl"], body,
                     signature_key=subscription["messageSignatureKey"])
    drain()
    (message,) = mailbox.messages
    assert message["To"] == "ola@example.com"
    (read,) = mindbody.requests_to("GET", "/public/v6/client/clients")
    assert read.query["request.clientIds"] == [ola["Id"]]


def test_a_wrong_signature_is_401_and_nothing_is_stored(served, mindbody, harbour, sam):
    app, url = served
    booked = visit(mindbody, sam, status="Completed")
    body = mindbody.event("appointmentBooking.updated", SITE, booked["Id"])
    answer = mindbody.deliver(f"{url}/webhooks/mindbody", body, signature_key="not-the-key")
    assert answer.status_code == 401
    unsigned = requests.post(f"{url}/webhooks/mindbody", data=json.dumps(body), timeout=10,
                             headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert flows.inbox(app) == []


def test_a_signed_but_malformed_body_is_400_naming_the_field(served, mindbody, harbour, sam):
    app, url = served
    booked = visit(mindbody, sam, status="Completed")
    key = next(iter(mindbody.subscriptions.values()))["messageSignatureKey"]
    body = mindbody.event("appointmentBooking.updated", SITE, booked["Id"])
    body["eventData"]["startDateTime"] = "next Tuesday"
    answer = mindbody.deliver(f"{url}/webhooks/mindbody", body, signature_key=key)
    assert (answer.status_code, answer.json()["field"]) == (400, "eventData.startDateTime")
    del body["messageId"]
    answer = mindbody.deliver(f"{url}/webhooks/mindbody", body, signature_key=key)
    assert (answer.status_code, answer.json()["field"]) == (400, "messageId")
    assert flows.inbox(app) == []


def test_each_site_reaches_its_own_clinic_and_unknown_sites_are_ignored(
        served, mindbody, rapport, harbour):
    app, url = served
    north = add_clinic(rapport, OTHER_SITE, "Harbour North")
    client = mindbody.seed_client(OTHER_SITE, email="kim@example.com", first_name="Kim")
    booked = mindbody.seed_appointment(OTHER_SITE, client_id=client["Id"],
                                       start=NOW - timedelta(hours=2), status="Completed")
    key = next(iter(mindbody.subscriptions.values()))["messageSignatureKey"]
    body = mindbody.event("appointmentBooking.updated", OTHER_SITE, booked["Id"])
    assert mindbody.deliver(f"{url}/webhooks/mindbody", body, signature_key=key).status_code \
        == 202
    (row,) = flows.inbox(app)
    assert row.clinic_id == flows.clinic(app, north["key"]).id
    mindbody.seed_site(4242)
    stranger = mindbody.seed_client(4242)
    theirs = mindbody.seed_appointment(4242, client_id=stranger["Id"], start=NOW)
    answer = mindbody.deliver(f"{url}/webhooks/mindbody",
                              mindbody.event("appointmentBooking.created", 4242, theirs["Id"]),
                              signature_key=key)
    # Mindbody retries for 3 hours whatever is not 2xx: a site Rapport does not serve is
    # acknowledged and ignored.
    assert (answer.status_code, answer.json()["reason"]) == (200, "unknown account")
    assert len(flows.inbox(app)) == 1


def test_head_on_the_webhook_address_answers_200(served, mindbody):
    _, url = served
    answer = requests.head(f"{url}/webhooks/mindbody", timeout=10)
    assert answer.status_code == 200 and answer.content == b""


def test_a_site_that_withdraws_its_approval_needs_reconnecting_until_approved_again(
        served, mindbody, rapport, harbour, sam, drain, mailbox):
    app, _ = served
    booked = visit(mindbody, sam, status="Completed")
    announce(mindbody, booked, "appointmentBooking.updated")
    drain()
    mindbody.deactivate(SITE)  # the owner removes Rapport from the site
    answer_last_check_in(app, mailbox, 4)
    drain()
    clinic = flows.clinic(app, harbour["key"])
    assert clinic.status == "needs_reconnecting" and "403" in clinic.status_detail
    assert [w.status for w in flows.write_backs(app)] == ["paused"]
    listed = rapport("clinic", "list").output
    assert "NEEDS RECONNECTING" in listed
    assert f"rapport clinic mindbody {harbour['key']} --reconnect" in listed
    assert mindbody.client(SITE, sam["Id"])["Notes"] == OWN_NOTES
    assert {r.status for r, _ in mindbody.rejected} == {403}

    refused = rapport("clinic", "mindbody", harbour["key"], "--reconnect")
    assert refused.exit_code == 1 and "ActivationLink" in refused.output  # not approved yet
    mindbody.activate(SITE)
    reconnected = rapport("clinic", "mindbody", harbour["key"], "--reconnect")
    assert "Reconnected; 1 write-back(s) resumed." in reconnected.output
    drain()
    notes = mindbody.client(SITE, sam["Id"])["Notes"]
    assert notes.startswith(OWN_NOTES) and notes.count("[Rapport]") == 1


def test_a_refused_token_renewal_marks_the_clinic(served, mindbody, harbour):
    """The daily renewal of the kept staff token, refused: "needs reconnecting"."""
    app, _ = served
    mindbody.deactivate(SITE)
    with app.app_context():
        assert refresh_tokens() == 1
    assert flows.clinic(app, harbour["key"]).status == "needs_reconnecting"


@pytest.mark.parametrize("status", [429, 500])
def test_a_throttled_or_failing_mindbody_is_retried_and_written_once(
        served, mindbody, harbour, sam, drain, mailbox, status):
    app, _ = served
    booked = visit(mindbody, sam, status="Completed")
    announce(mindbody, booked, "appointmentBooking.updated")
    drain()
    mindbody.fail_next("/public/v6/client/updateclient", status, headers={"Retry-After": "40"})
    answer_last_check_in(app, mailbox, 4)
    drain()
    assert mindbody.client(SITE, sam["Id"])["Notes"] == OWN_NOTES
    (write_back,) = flows.write_backs(app)
    assert write_back.status == "pending" and str(status) in write_back.last_error
    ahead = flows.due_now(app)
    if status == 429:  # Mindbody's Retry-After is honoured
        assert ahead and min(ahead) >= 35
    drain()
    notes = mindbody.client(SITE, sam["Id"])["Notes"]
    assert notes.startswith(OWN_NOTES) and notes.count("[Rapport]") == 1
    assert [r.status for r in mindbody.requests_to("POST", "/public/v6/client/updateclient")] \
        == [status, 200]


def test_the_completed_event_redelivered_after_an_answer_changes_nothing(
        served, mindbody, harbour, sam, drain, mailbox):
    app, _ = served
    booked = visit(mindbody, sam, status="Completed")
    _, body = announce(mindbody, booked, "appointmentBooking.updated")
    drain()
    answer_last_check_in(app, mailbox, 4)
    drain()
    body["messageId"] = "a-later-message"  # the same fact, sent again by Mindbody
    (subscription,) = mindbody.subscriptions.values()
    mindbody.deliver(subscription["webhookUrl"], body,
                     signature_key=subscription["messageSignatureKey"])
    drain()
    assert len(mailbox.messages) == 1
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Appointment.status)) == "completed"
        assert len(db.scalars(select(InboxEvent)).all()) == 2
