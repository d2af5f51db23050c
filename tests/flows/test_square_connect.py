"""Installing Rapport for a Square seller: OAuth with state, tokens sealed and renewed,
the application's webhook subscription created through Square's API, events routed by
merchant id, and "needs reconnecting" cleared by connecting again."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import requests
from sqlalchemy import select, text

from handlers import square
from plugin.clinics import oauth, subscriptions
from plugin.clinics import records as clinics
from plugin.store import database as storage
from plugin.store.models import PlatformWebhook
from tests.sandboxes.square import SquareSandbox
from tests.support import console
from tests.support import square as square_support
from tests.support.square import (
    NOW,
    SQUARE,
    connect,
    ended_visit,
    square_credentials,
    stored_token,
    to_application,
)
from tests.support.survey import answer_last_check_in


def test_a_new_square_clinic_waits_for_its_connect_link(square_app, square_oauth_clinic):
    app, url = square_app
    key = square_oauth_clinic["key"]
    assert square_oauth_clinic["connect_url"] == f"{url}/connect/square/{key}"
    with app.app_context(), storage.session() as db:
        assert clinics.by_key(db, square_oauth_clinic["key"]).status == "not_connected"


def test_an_oauth_clinic_is_not_given_a_webhook_url_that_would_refuse_everything(
    square_app, square_sandbox, square_oauth_clinic, square_manual_clinic
):
    """Its events come on the application's subscription; its own URL answers 401."""
    _, url = square_app
    assert "webhook_url" not in square_oauth_clinic
    assert square_manual_clinic["webhook_url"] == f"{url}/webhooks/square/harbour"


def test_the_connect_link_asks_for_the_scopes_with_a_state(square_app, square_sandbox,
                                                           square_oauth_clinic):
    _, url = square_app
    first = square_support.BROWSER["session"].get(
        f"{url}/connect/square/{square_oauth_clinic['key']}", timeout=10, allow_redirects=False
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
    square_app, square_sandbox, square_oauth_clinic
):
    app, url = square_app
    page = connect(url, square_oauth_clinic["key"])
    assert page.status_code == 200, page.text
    assert "Square is connected" in page.text

    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, square_oauth_clinic["key"])
        stored = clinics.credentials(clinic)
        assert (clinic.status, clinic.account_id) == ("active", square_sandbox.merchant_id)
        assert stored["access_token"] and stored["refresh_token"] and stored["expires_at"]
        raw = db.execute(text("SELECT credentials FROM clinics")).scalar()
        assert stored["access_token"] not in raw and stored["refresh_token"] not in raw
    assert "rapport-alliance" in square_sandbox.definitions
    (subscription,) = square_sandbox.subscriptions
    assert subscription["notification_url"] == f"{url}/webhooks/square"
    assert set(subscription["event_types"]) == {"booking.created", "booking.updated",
                                                "oauth.authorization.revoked"}
    created = square_sandbox.requests_to("POST", "/v2/webhooks/subscriptions")
    assert created[0].headers["authorization"] == f"Bearer {square_sandbox.personal_access_token}"
    with app.app_context(), storage.session() as db:
        row = db.scalar(select(PlatformWebhook))
        assert subscription["signature_key"] not in row.credentials  # sealed


def test_a_second_clinic_reuses_the_subscription(square_app, square_sandbox, square_oauth_clinic):
    _, url = square_app
    connect(url, square_oauth_clinic["key"])
    connect(url, square_oauth_clinic["key"])  # connecting again is fine
    assert len(square_sandbox.subscriptions) == 1


def test_a_seller_disconnecting_in_square_shows_at_once(square_app, square_sandbox,
                                                       square_oauth_clinic):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    # The seller disconnects after connecting: Square's times are to the second.
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    revoked = {"merchant_id": square_sandbox.merchant_id, "type": "oauth.authorization.revoked",
               "event_id": "2b7e4f1c-8d3a-5c69-b0e2-9a4f6c1d8e35",
               "created_at": (later + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "data": {"type": "revocation", "id": "", "object": {"revocation": {
                   "revoked_at": later.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "revoker_type": "MERCHANT"}}}}
    answer = to_application(square_sandbox, url, revoked)
    assert answer.status_code == 200 and answer.json()["status"] == "noted"
    assert to_application(square_sandbox, url, revoked).status_code == 200  # redelivered
    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, square_oauth_clinic["key"])
        assert clinic.status == "needs_reconnecting"
        assert "disconnected Rapport in Square" in clinic.status_detail
    forged = to_application(square_sandbox, url, revoked, signature_key="not-the-key")
    assert forged.status_code == 401


def test_a_revocation_from_before_the_clinic_reconnected_changes_nothing(
    square_app, square_sandbox, square_oauth_clinic
):
    """Square redelivers an event for days: the seller may have connected again since."""
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    revoked = {"merchant_id": square_sandbox.merchant_id, "type": "oauth.authorization.revoked",
               "event_id": "0c9d2e7a-4b1f-5a38-9e6d-3f8a1b7c2d46", "created_at": an_hour_ago,
               "data": {"type": "revocation", "id": "", "object": {"revocation": {
                   "revoked_at": an_hour_ago, "revoker_type": "MERCHANT"}}}}
    answer = to_application(square_sandbox, url, revoked)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    with app.app_context(), storage.session() as db:
        assert clinics.by_key(db, square_oauth_clinic["key"]).status == "active"


def test_going_live_subscribes_again_in_production(square_app, square_sandbox):
    """A Rapport tried on Square's sandbox and then switched to production (same base
    URL, same database) needs production's own subscription: sandbox's sends nothing."""
    from tests.sandboxes.square import SquareSandbox

    app, url = square_app
    with app.app_context():
        sandbox_hook = subscriptions.ensure_application_webhook(SQUARE)
    with SquareSandbox() as production, app.app_context():
        app.config.update(SQUARE_ENVIRONMENT="production", SQUARE_BASE_URL=production.base_url,
                          SQUARE_ACCESS_TOKEN=production.personal_access_token)
        live_hook = subscriptions.ensure_application_webhook(SQUARE)
        assert subscriptions.ensure_application_webhook(SQUARE) == live_hook  # kept, not renewed
        assert len(production.subscriptions) == 1
        app.config.update(SQUARE_ENVIRONMENT="sandbox", SQUARE_BASE_URL=square_sandbox.base_url)
        assert subscriptions.application_webhook(SQUARE) == sandbox_hook
    assert len(square_sandbox.subscriptions) == 1
    assert sandbox_hook["signature_keys"] != live_hook["signature_keys"]
    assert sandbox_hook["notification_url"] == live_hook["notification_url"] == (
        f"{url}/webhooks/square")


def test_the_callback_refuses_a_forged_or_foreign_state(square_app, square_oauth_clinic):
    _, url = square_app
    page = requests.get(f"{url}/connect/square/callback?code=x&state=forged", timeout=10)
    assert page.status_code == 400
    assert "did not come from Rapport" in page.text
    denied = requests.get(f"{url}/connect/square/callback?error=access_denied", timeout=10)
    assert denied.status_code == 400 and "Nothing was changed" in denied.text


def test_events_on_the_application_webhook_reach_the_clinic_by_merchant(
    square_app, square_sandbox, square_oauth_clinic, square_drain, mailbox
):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
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
    assert put.headers["authorization"] == f"Bearer {stored_token(app, square_oauth_clinic['key'])}"


def test_events_of_an_unknown_merchant_are_acknowledged_and_dropped(
    square_app, square_sandbox, square_oauth_clinic
):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    stranger = SquareSandbox(merchant_id="MLSOMEONEELSE")
    _, event = ended_visit(stranger)
    ignored = to_application(square_sandbox, url, event)
    assert ignored.status_code == 200
    assert ignored.json()["status"] == "ignored"
    bad = to_application(square_sandbox, url, event, signature_key="wrong")
    assert bad.status_code == 401


def clinic_locale(app, key: str) -> tuple[str, str, list[str]]:
    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, key)
        return clinic.timezone, clinic.language, clinics.from_platform(clinic)


def test_connecting_takes_what_the_admin_left_out_from_the_main_location(
    square_app, square_sandbox
):
    app, url = square_app
    square_sandbox.main_location.update(timezone="America/Toronto", language_code="fr-CA")
    with app.app_context(), storage.session() as db:
        key = clinics.create(
            db, name="Harbour Massage", platform="square", timezone="Europe/London",
            credentials=square_credentials(), status="not_connected",
            settings={clinics.FROM_PLATFORM: ["language"]}).clinic.key
    assert connect(url, key).status_code == 200
    assert "MERCHANT_PROFILE_READ" in square_sandbox.scopes_of(stored_token(app, key))
    # The admin's time zone stays; the language comes from Square.
    assert clinic_locale(app, key) == ("Europe/London", "fr", [])


def test_a_location_without_a_language_leaves_it_to_be_asked_again(square_app, square_sandbox):
    app, url = square_app
    square_sandbox.main_location.update(timezone="Europe/Paris")
    del square_sandbox.main_location["language_code"]
    with app.app_context(), storage.session() as db:
        key = clinics.create(
            db, name="Harbour Massage", platform="square",
            credentials=square_credentials(), status="not_connected",
            settings={clinics.FROM_PLATFORM: ["timezone", "language"]}).clinic.key
    assert connect(url, key).status_code == 200
    assert clinic_locale(app, key) == ("Europe/Paris", "en", ["language"])


def test_a_square_that_cannot_say_leaves_the_defaults_and_connects(square_app, square_sandbox):
    app, url = square_app
    with app.app_context(), storage.session() as db:
        key = clinics.create(
            db, name="Harbour Massage", platform="square",
            credentials=square_credentials(), status="not_connected",
            settings={clinics.FROM_PLATFORM: ["timezone", "language"]}).clinic.key
    square_sandbox.fail_next("/v2/locations/main", 403, code="INSUFFICIENT_SCOPES")
    assert connect(url, key).status_code == 200
    assert square_sandbox.requests_to("GET", "/v2/locations/main")
    assert clinic_locale(app, key) == ("UTC", "en", ["timezone", "language"])
    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, key)
        assert clinic.status == "active"
        clinics.set_locale(clinic, timezone="Europe/Dublin")  # `clinic configure`
    # What the admin set is never taken from Square afterwards.
    assert clinic_locale(app, key) == ("Europe/Dublin", "en", ["language"])


def test_production_links_go_to_square_itself(app_factory):
    app = app_factory(
        SQUARE_ENVIRONMENT="production",
        SQUARE_APPLICATION_ID="sq0idp-x",
        SQUARE_APPLICATION_SECRET="secret",
    )
    with app.app_context(), storage.session() as db:
        created = clinics.create(
            db, name="Harbour", platform="square",
            credentials=square_credentials(), status="not_connected")
    browser = console.sign_in(app, app.test_client(), "operator@rapport.test", operator=True)
    location = browser.get(f"/connect/square/{created.clinic.key}").headers["Location"]
    assert location.startswith("https://connect.squareup.com/oauth2/authorize?")


# --- the Connect link applies to OAuth clinics, and to the account they are connected to --


def deliver_to_manual(square_sandbox, url: str):
    seeded = square_sandbox.seed_customer()
    booking = square_sandbox.seed_booking(customer_id=seeded["id"], start_at=NOW)
    event = square_sandbox.booking_event("booking.created", booking["id"])
    return square_sandbox.deliver(f"{url}/webhooks/square/harbour", event,
                                  signature_key="harbour-key",
                                  notification_url=f"{url}/webhooks/square/harbour")


def test_the_connect_link_refuses_a_manual_clinic_and_says_what_to_run(
    square_app, square_sandbox, square_manual_clinic
):
    app, url = square_app
    page = square_support.BROWSER["session"].get(f"{url}/connect/square/harbour", timeout=10,
                                         allow_redirects=False)
    assert page.status_code == 409
    assert "rapport clinic square harbour --access-token NEW" in page.text
    with app.app_context(), storage.session() as db:
        stored = clinics.credentials(clinics.by_key(db, "harbour"))
    assert stored["mode"] == "manual" and stored["signature_keys"] == ["harbour-key"]
    assert deliver_to_manual(square_sandbox, url).status_code == 202


def test_the_callback_refuses_a_manual_clinic_before_exchanging_the_code(
    square_app, square_sandbox, square_manual_clinic
):
    """Even with a state Rapport signed and a real code, a manual clinic's subscription
    key and notification URL are not replaced by OAuth tokens."""

    app, url = square_app
    with app.app_context():
        state = oauth._serializer(SQUARE).dumps({"clinic": "harbour", "nonce": "n1"})
    code = square_sandbox.authorize(square.SCOPES, redirect_uri=f"{url}/connect/square/callback")
    page = requests.get(f"{url}/connect/square/callback", params={"code": code, "state": state},
                        cookies={"rapport_square_oauth": "n1"}, timeout=10)
    assert page.status_code == 409 and "--access-token NEW" in page.text
    assert square_sandbox.requests_to("POST", "/oauth2/token") == []
    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, "harbour")
        stored = clinics.credentials(clinic)
        assert (stored["mode"], clinic.account_id) == ("manual", None)
    assert stored["signature_keys"] == ["harbour-key"]
    assert deliver_to_manual(square_sandbox, url).status_code == 202


# --- settings: refused at startup, or read as given -----------------------------------
