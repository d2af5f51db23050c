"""Installing Rapport for a Square seller: OAuth with state, tokens sealed and renewed,
the application's webhook subscription created through Square's API, events routed by
merchant id, and "needs reconnecting" cleared by connecting again."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from conftest import SQUARE_AT_ONCE, answer_last_check_in
from sqlalchemy import select, text

from handlers import square
from plugin import accounts, clinics, installs, storage
from plugin.models import Clinic, PlatformWebhook, WriteBack
from tests.sandboxes.square import SquareSandbox

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def new_clinic(square_app):
    """`rapport clinic add --platform square --name …`: created, not connected yet."""
    app, _ = square_app
    with app.app_context(), storage.session() as db:
        created = clinics.create(
            db,
            name="Harbour Massage",
            platform="square",
            timezone="Europe/London",
            credentials=installs.manual_credentials("square"),
            settings={"follow_up": SQUARE_AT_ONCE},
        )
        return installs.describe(created)


def connect(base_url: str, key: str) -> requests.Response:
    """The admin opens the Connect link and allows Rapport in Square (the sandbox's
    authorize page grants what is asked and redirects back)."""
    return requests.get(f"{base_url}/connect/square/{key}", timeout=10)


def to_application(sandbox, url: str, event: dict, signature_key: str | None = None):
    """Square delivering ``event`` to the application's subscription (its key unless told)."""
    (subscription,) = sandbox.subscriptions
    return sandbox.deliver(
        f"{url}/webhooks/square",
        event,
        signature_key=signature_key or subscription["signature_key"],
        notification_url=subscription["notification_url"],
    )


def ended_visit(sandbox, **customer):
    """A customer's booking that ended half an hour ago; (customer, its booking event)."""
    seeded = sandbox.seed_customer(**customer)
    booking = sandbox.seed_booking(customer_id=seeded["id"], start_at=NOW - timedelta(minutes=90))
    return seeded, sandbox.booking_event("booking.created", booking["id"])


def stored_token(app, key: str) -> str:
    with app.app_context(), storage.session() as db:
        return clinics.credentials(clinics.by_key(db, key))["access_token"]


def test_a_new_square_clinic_waits_for_its_connect_link(square_app, new_clinic):
    app, url = square_app
    assert new_clinic["connect_url"] == f"{url}/connect/square/{new_clinic['key']}"
    with app.app_context(), storage.session() as db:
        assert clinics.by_key(db, new_clinic["key"]).status == "not_connected"


def test_the_connect_link_asks_for_the_scopes_with_a_state(square_app, square_sandbox, new_clinic):
    _, url = square_app
    first = requests.get(
        f"{url}/connect/square/{new_clinic['key']}", timeout=10, allow_redirects=False
    )
    assert first.status_code == 302
    location = urlparse(first.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}" == square_sandbox.base_url
    assert location.path == "/oauth2/authorize"
    assert query["client_id"] == [square_sandbox.application_id]
    assert set(query["scope"][0].split()) == set(square.SCOPES)
    assert query["redirect_uri"] == [f"{url}/connect/square/callback"]
    assert len(query["state"][0]) > 40
    assert "rapport_square_oauth" in first.cookies


def test_connecting_seals_tokens_defines_the_attribute_and_subscribes(
    square_app, square_sandbox, new_clinic
):
    app, url = square_app
    page = connect(url, new_clinic["key"])
    assert page.status_code == 200, page.text
    assert "Square is connected" in page.text

    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, new_clinic["key"])
        stored = clinics.credentials(clinic)
        assert (clinic.status, clinic.account_id) == ("active", square_sandbox.merchant_id)
        assert stored["access_token"] and stored["refresh_token"] and stored["expires_at"]
        raw = db.execute(text("SELECT credentials FROM clinics")).scalar()
        assert stored["access_token"] not in raw and stored["refresh_token"] not in raw
    assert "rapport-alliance" in square_sandbox.definitions
    (subscription,) = square_sandbox.subscriptions
    assert subscription["notification_url"] == f"{url}/webhooks/square"
    assert set(subscription["event_types"]) == {"booking.created", "booking.updated"}
    created = square_sandbox.requests_to("POST", "/v2/webhooks/subscriptions")
    assert created[0].headers["authorization"] == f"Bearer {square_sandbox.personal_access_token}"
    with app.app_context(), storage.session() as db:
        row = db.scalar(select(PlatformWebhook))
        assert subscription["signature_key"] not in row.credentials  # sealed


def test_a_second_clinic_reuses_the_subscription(square_app, square_sandbox, new_clinic):
    _, url = square_app
    connect(url, new_clinic["key"])
    connect(url, new_clinic["key"])  # connecting again is fine
    assert len(square_sandbox.subscriptions) == 1


def test_the_callback_refuses_a_forged_or_foreign_state(square_app, new_clinic):
    _, url = square_app
    page = requests.get(f"{url}/connect/square/callback?code=x&state=forged", timeout=10)
    assert page.status_code == 400
    assert "did not come from Rapport" in page.text
    denied = requests.get(f"{url}/connect/square/callback?error=access_denied", timeout=10)
    assert denied.status_code == 400 and "Nothing was changed" in denied.text


def test_events_on_the_application_webhook_reach_the_clinic_by_merchant(
    square_app, square_sandbox, new_clinic, square_drain, mailbox
):
    app, url = square_app
    connect(url, new_clinic["key"])
    customer, event = ended_visit(square_sandbox, note="Therapist's own note.")
    assert to_application(square_sandbox, url, event).status_code == 202
    square_drain()
    assert len(mailbox.messages) == 1
    answer_last_check_in(app, mailbox, 4)
    square_drain()
    note = square_sandbox.customer(customer["id"])["note"]
    assert note.startswith("Therapist's own note.") and "[Rapport]" in note
    # Written with the seller's OAuth token, not the application's.
    put = square_sandbox.requests_to("PUT", f"/v2/customers/{customer['id']}")[0]
    assert put.headers["authorization"] == f"Bearer {stored_token(app, new_clinic['key'])}"


def test_events_of_an_unknown_merchant_are_acknowledged_and_dropped(
    square_app, square_sandbox, new_clinic
):
    app, url = square_app
    connect(url, new_clinic["key"])
    stranger = SquareSandbox(merchant_id="MLSOMEONEELSE")
    _, event = ended_visit(stranger)
    ignored = to_application(square_sandbox, url, event)
    assert ignored.status_code == 200
    assert ignored.json()["status"] == "ignored"
    bad = to_application(square_sandbox, url, event, signature_key="wrong")
    assert bad.status_code == 401


def age_token(app, key: str, *, days_left: int, revoke=None) -> str:
    """Make the clinic's stored access token look older; its value before."""
    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, key)
        values = clinics.credentials(clinic)
        if revoke:
            revoke(values["access_token"])
        values["expires_at"] = (NOW + timedelta(days=days_left)).isoformat()
        clinics.store_credentials(clinic, values)
        return values["access_token"]


def test_tokens_are_renewed_a_week_into_their_life(square_app, square_sandbox, new_clinic):
    app, url = square_app
    connect(url, new_clinic["key"])
    old_token = age_token(app, new_clinic["key"], days_left=22)  # 8 days old
    with app.app_context():
        with storage.session() as db:
            clinic = clinics.by_key(db, new_clinic["key"])
        fresh = accounts.credentials_for(clinic)
        assert fresh["access_token"] != old_token
        with storage.session() as db:
            assert (
                clinics.credentials(clinics.by_key(db, new_clinic["key"]))["access_token"]
                == fresh["access_token"]
            )
    grants = [r.json["grant_type"] for r in square_sandbox.requests_to("POST", "/oauth2/token")]
    assert grants == ["authorization_code", "refresh_token"]


def test_a_refused_refresh_marks_the_clinic_needs_reconnecting(
    square_app, square_sandbox, new_clinic
):
    app, url = square_app
    connect(url, new_clinic["key"])
    age_token(app, new_clinic["key"], days_left=1, revoke=square_sandbox.revoke)
    with app.app_context():
        assert accounts.refresh_due() == 1
        with storage.session() as db:
            assert clinics.by_key(db, new_clinic["key"]).status == "needs_reconnecting"


def test_reconnecting_resumes_paused_write_backs(
    square_app, square_sandbox, new_clinic, square_drain, mailbox
):
    app, url = square_app
    connect(url, new_clinic["key"])
    customer, event = ended_visit(square_sandbox)
    to_application(square_sandbox, url, event)
    square_drain()
    square_sandbox.revoke(stored_token(app, new_clinic["key"]))  # disconnected in Square
    answer_last_check_in(app, mailbox, 4)
    square_drain()
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Clinic.status)) == "needs_reconnecting"
        assert db.scalar(select(WriteBack.status)) == "paused"
    assert connect(url, new_clinic["key"]).status_code == 200
    square_drain()
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Clinic.status)) == "active"
        assert db.scalar(select(WriteBack.status)) == "delivered"
    assert square_sandbox.customer(customer["id"])["note"].count("[Rapport]") == 1


def test_production_links_go_to_square_itself(app_factory):
    app = app_factory(
        SQUARE_ENVIRONMENT="production",
        SQUARE_APPLICATION_ID="sq0idp-x",
        SQUARE_APPLICATION_SECRET="secret",
    )
    with app.app_context(), storage.session() as db:
        created = clinics.create(
            db, name="Harbour", platform="square", credentials=installs.manual_credentials("square")
        )
    location = app.test_client().get(f"/connect/square/{created.clinic.key}").headers["Location"]
    assert location.startswith("https://connect.squareup.com/oauth2/authorize?")
