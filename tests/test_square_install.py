"""Installing Rapport for a Square seller: OAuth with state, tokens sealed and renewed,
the application's webhook subscription created through Square's API, events routed by
merchant id, and "needs reconnecting" cleared by connecting again."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from servers import LiveServer
from sqlalchemy import select, text
from survey_client import answer, answers_for, survey_path

from handlers import square
from plugin import accounts, clinics, installs, instruments, storage
from plugin.models import Clinic, Invitation, PlatformWebhook, WriteBack
from tests.sandboxes.square import SquareSandbox

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def sandbox():
    with SquareSandbox() as square_sandbox:
        yield square_sandbox


@pytest.fixture
def rapport(app_factory, sandbox):
    holder = {}
    live = LiveServer(lambda environ, start: holder["app"](environ, start))
    app = app_factory(BASE_URL=live.url, SQUARE_ENVIRONMENT="sandbox",
                      SQUARE_BASE_URL=sandbox.base_url,
                      SQUARE_APPLICATION_ID=sandbox.application_id,
                      SQUARE_APPLICATION_SECRET=sandbox.application_secret,
                      SQUARE_ACCESS_TOKEN=sandbox.personal_access_token)
    holder["app"] = app
    yield app, live.url
    live.stop()


@pytest.fixture
def drain(rapport):
    from plugin import worker

    app, _ = rapport

    def run(wait_for_scheduled: float = 0):
        with app.app_context():
            worker.drain(forking=False, wait_for_scheduled=wait_for_scheduled)

    return run


@pytest.fixture
def new_clinic(rapport):
    """`rapport clinic add --platform square --name …`: created, not connected yet."""
    app, _ = rapport
    with app.app_context(), storage.session() as db:
        created = clinics.create(
            db, name="Harbour Massage", platform="square", timezone="Europe/London",
            credentials=installs.manual_credentials("square"),
            settings={"follow_up": {"send_delay_minutes": 0, "window_start": "00:00",
                                    "window_end": "24:00", "completion_grace_minutes": 0}})
        return installs.describe(created)


def connect(base_url: str, key: str) -> requests.Response:
    """The admin opens the Connect link and allows Rapport in Square (the sandbox's
    authorize page grants what is asked and redirects back)."""
    return requests.get(f"{base_url}/connect/square/{key}", timeout=10)


def test_a_new_square_clinic_waits_for_its_connect_link(rapport, new_clinic):
    app, url = rapport
    assert new_clinic["connect_url"] == f"{url}/connect/square/{new_clinic['key']}"
    with app.app_context(), storage.session() as db:
        assert clinics.by_key(db, new_clinic["key"]).status == "not_connected"


def test_the_connect_link_asks_for_the_scopes_with_a_state(rapport, sandbox, new_clinic):
    _, url = rapport
    first = requests.get(f"{url}/connect/square/{new_clinic['key']}", timeout=10,
                         allow_redirects=False)
    assert first.status_code == 302
    location = urlparse(first.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}" == sandbox.base_url
    assert location.path == "/oauth2/authorize"
    assert query["client_id"] == [sandbox.application_id]
    assert set(query["scope"][0].split()) == set(square.SCOPES)
    assert query["redirect_uri"] == [f"{url}/connect/square/callback"]
    assert len(query["state"][0]) > 40
    assert "rapport_square_oauth" in first.cookies


def test_connecting_seals_tokens_defines_the_attribute_and_subscribes(rapport, sandbox,
                                                                      new_clinic):
    app, url = rapport
    page = connect(url, new_clinic["key"])
    assert page.status_code == 200, page.text
    assert "Square is connected" in page.text

    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, new_clinic["key"])
        stored = clinics.credentials(clinic)
        assert (clinic.status, clinic.account_id) == ("active", sandbox.merchant_id)
        assert stored["access_token"] and stored["refresh_token"] and stored["expires_at"]
        raw = db.execute(text("SELECT credentials FROM clinics")).scalar()
        assert stored["access_token"] not in raw and stored["refresh_token"] not in raw
    assert "rapport-alliance" in sandbox.definitions
    (subscription,) = sandbox.subscriptions
    assert subscription["notification_url"] == f"{url}/webhooks/square"
    assert set(subscription["event_types"]) == {"booking.created", "booking.updated"}
    created = sandbox.requests_to("POST", "/v2/webhooks/subscriptions")
    assert created[0].headers["authorization"] == f"Bearer {sandbox.personal_access_token}"
    with app.app_context(), storage.session() as db:
        row = db.scalar(select(PlatformWebhook))
        assert subscription["signature_key"] not in row.credentials  # sealed


def test_a_second_clinic_reuses_the_subscription(rapport, sandbox, new_clinic):
    _, url = rapport
    connect(url, new_clinic["key"])
    connect(url, new_clinic["key"])  # connecting again is fine
    assert len(sandbox.subscriptions) == 1


def test_the_callback_refuses_a_forged_or_foreign_state(rapport, new_clinic):
    _, url = rapport
    page = requests.get(f"{url}/connect/square/callback?code=x&state=forged", timeout=10)
    assert page.status_code == 400
    assert "did not come from Rapport" in page.text
    denied = requests.get(f"{url}/connect/square/callback?error=access_denied", timeout=10)
    assert denied.status_code == 400 and "Nothing was changed" in denied.text


def test_events_on_the_application_webhook_reach_the_clinic_by_merchant(
        rapport, sandbox, new_clinic, drain, mailbox):
    app, url = rapport
    connect(url, new_clinic["key"])
    (subscription,) = sandbox.subscriptions
    customer = sandbox.seed_customer(note="Therapist's own note.")
    booking = sandbox.seed_booking(customer_id=customer["id"],
                                   start_at=NOW - timedelta(minutes=90))
    event = sandbox.booking_event("booking.created", booking["id"])
    delivered = sandbox.deliver(f"{url}/webhooks/square", event,
                                signature_key=subscription["signature_key"],
                                notification_url=subscription["notification_url"])
    assert delivered.status_code == 202
    drain()
    (message,) = mailbox.messages
    with app.app_context(), storage.session() as db:
        instrument = instruments.get(db.scalar(select(Invitation.instrument_id)))
    answer(app.test_client(), survey_path(message), answers_for(instrument, 4))
    drain()
    note = sandbox.customer(customer["id"])["note"]
    assert note.startswith("Therapist's own note.") and "[Rapport]" in note
    # Written with the seller's OAuth token, not the application's.
    put = sandbox.requests_to("PUT", f"/v2/customers/{customer['id']}")[0]
    with app.app_context(), storage.session() as db:
        token = clinics.credentials(clinics.by_key(db, new_clinic["key"]))["access_token"]
    assert put.headers["authorization"] == f"Bearer {token}"


def test_events_of_an_unknown_merchant_are_acknowledged_and_dropped(rapport, sandbox,
                                                                    new_clinic):
    app, url = rapport
    connect(url, new_clinic["key"])
    (subscription,) = sandbox.subscriptions
    stranger = SquareSandbox(merchant_id="MLSOMEONEELSE")
    customer = stranger.seed_customer()
    booking = stranger.seed_booking(customer_id=customer["id"], start_at=NOW)
    event = stranger.booking_event("booking.created", booking["id"])
    answer_ = sandbox.deliver(f"{url}/webhooks/square", event,
                              signature_key=subscription["signature_key"],
                              notification_url=subscription["notification_url"])
    assert answer_.status_code == 200
    assert answer_.json()["status"] == "ignored"
    bad = sandbox.deliver(f"{url}/webhooks/square", event, signature_key="wrong",
                          notification_url=subscription["notification_url"])
    assert bad.status_code == 401


def test_tokens_are_renewed_a_week_into_their_life(rapport, sandbox, new_clinic):
    app, url = rapport
    connect(url, new_clinic["key"])
    with app.app_context():
        with storage.session() as db:
            clinic = clinics.by_key(db, new_clinic["key"])
            values = clinics.credentials(clinic)
            old_token = values["access_token"]
            values["expires_at"] = (NOW + timedelta(days=22)).isoformat()  # 8 days old
            clinics.store_credentials(clinic, values)
        fresh = accounts.credentials_for(clinic)
        assert fresh["access_token"] != old_token
        with storage.session() as db:
            assert clinics.credentials(clinics.by_key(db, new_clinic["key"]))[
                "access_token"] == fresh["access_token"]
    grants = [r.json["grant_type"] for r in sandbox.requests_to("POST", "/oauth2/token")]
    assert grants == ["authorization_code", "refresh_token"]


def test_a_refused_refresh_marks_the_clinic_needs_reconnecting(rapport, sandbox, new_clinic):
    app, url = rapport
    connect(url, new_clinic["key"])
    with app.app_context():
        with storage.session() as db:
            clinic = clinics.by_key(db, new_clinic["key"])
            values = clinics.credentials(clinic)
            sandbox.revoke(values["access_token"])
            values["expires_at"] = (NOW + timedelta(days=1)).isoformat()
            clinics.store_credentials(clinic, values)
        assert accounts.refresh_due() == 1
        with storage.session() as db:
            assert clinics.by_key(db, new_clinic["key"]).status == "needs_reconnecting"


def test_reconnecting_resumes_paused_write_backs(rapport, sandbox, new_clinic, drain, mailbox):
    app, url = rapport
    connect(url, new_clinic["key"])
    (subscription,) = sandbox.subscriptions
    customer = sandbox.seed_customer()
    booking = sandbox.seed_booking(customer_id=customer["id"],
                                   start_at=NOW - timedelta(minutes=90))
    sandbox.deliver(f"{url}/webhooks/square",
                    sandbox.booking_event("booking.created", booking["id"]),
                    signature_key=subscription["signature_key"],
                    notification_url=subscription["notification_url"])
    drain()
    with app.app_context(), storage.session() as db:
        token = clinics.credentials(clinics.by_key(db, new_clinic["key"]))["access_token"]
        instrument = instruments.get(db.scalar(select(Invitation.instrument_id)))
    sandbox.revoke(token)  # the seller disconnected Rapport in Square
    answer(app.test_client(), survey_path(mailbox.messages[0]), answers_for(instrument, 4))
    drain()
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Clinic.status)) == "needs_reconnecting"
        assert db.scalar(select(WriteBack.status)) == "paused"
    assert connect(url, new_clinic["key"]).status_code == 200
    drain()
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Clinic.status)) == "active"
        assert db.scalar(select(WriteBack.status)) == "delivered"
    assert sandbox.customer(customer["id"])["note"].count("[Rapport]") == 1


def test_production_links_go_to_square_itself(app_factory):
    app = app_factory(SQUARE_ENVIRONMENT="production", SQUARE_APPLICATION_ID="sq0idp-x",
                      SQUARE_APPLICATION_SECRET="secret")
    with app.app_context(), storage.session() as db:
        created = clinics.create(db, name="Harbour", platform="square",
                                 credentials=installs.manual_credentials("square"))
    location = app.test_client().get(f"/connect/square/{created.clinic.key}").headers[
        "Location"]
    assert location.startswith("https://connect.squareup.com/oauth2/authorize?")
