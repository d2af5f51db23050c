"""Connecting a clinic with Square OAuth, and keeping the connection alive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from handlers import square
from handlers.base import AuthError, Note, PermanentError, WriteBackTarget

CALLBACK = "https://rapport.example/connect/square/callback"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def connect(square_sandbox, *, scopes=None) -> dict:
    """A clinic admin follows the Connect link and Square sends them back with a code."""
    link = square.authorize_url(
        application_id=square_sandbox.application_id,
        state="st-123",
        environment="sandbox",
        redirect_uri=CALLBACK,
        base_url=square_sandbox.base_url,
    )
    if scopes is not None:
        code = square_sandbox.authorize(scopes, redirect_uri=CALLBACK)
    else:
        answer = requests.get(link, allow_redirects=False, timeout=5)
        assert answer.status_code == 302
        back = urlsplit(answer.headers["Location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
        query = parse_qs(back.query)
        assert query["state"] == ["st-123"]
        code = query["code"][0]
    tokens = square.exchange_code(
        application_id=square_sandbox.application_id,
        application_secret=square_sandbox.application_secret,
        code=code,
        base_url=square_sandbox.base_url,
        redirect_uri=CALLBACK,
    )
    return {**tokens, "base_url": square_sandbox.base_url, "environment": "sandbox"}


def test_the_connect_link_asks_for_exactly_rapports_scopes():
    link = square.authorize_url(application_id="sq0idp-abc", state="s1", environment="sandbox")
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "connect.squareupsandbox.com",
        "/oauth2/authorize",
    )
    query = parse_qs(parts.query)
    assert query["client_id"] == ["sq0idp-abc"] and query["state"] == ["s1"]
    assert query["scope"][0].split() == list(square.SCOPES)
    assert "scope=APPOINTMENTS_READ+APPOINTMENTS_ALL_READ+" in link
    assert query["session"] == ["false"]
    production = square.authorize_url(application_id="sq0idp-abc", state="s1")
    assert production.startswith("https://connect.squareup.com/oauth2/authorize?")


def test_exchange_gives_tokens_that_do_everything_rapport_needs(square_sandbox):
    creds = connect(square_sandbox)
    assert set(creds) >= {"access_token", "refresh_token", "expires_at", "merchant_id"}
    assert creds["merchant_id"] == square_sandbox.merchant_id
    assert square_sandbox.scopes_of(creds["access_token"]) == set(square.SCOPES)
    client = square_sandbox.seed_customer(note="Prefers firm pressure.")
    booking = square_sandbox.seed_booking(customer_id=client["id"],
                                          start_at=NOW + timedelta(days=3))
    note = Note(text="[R]\nAlliance 82/100\n[/R]", block_start="[R]", block_end="[/R]")
    square.ensure_attribute_definition(creds)
    square.fetch_appointment(creds, booking["id"])
    square.fetch_client(creds, client["id"])
    square.write_back(creds, WriteBackTarget(client["id"], booking["id"]), note)
    assert square.write_seller_note(creds, booking["id"], note) is True
    assert square_sandbox.rejected == []


def test_a_grant_missing_a_scope_is_refused_by_square(square_sandbox):
    creds = connect(square_sandbox, scopes=["APPOINTMENTS_READ", "APPOINTMENTS_ALL_READ"])
    client = square_sandbox.seed_customer()
    with pytest.raises(PermanentError, match="INSUFFICIENT_SCOPES"):
        square.fetch_client(creds, client["id"])


def test_webhook_subscriptions_need_the_applications_own_token(square_sandbox):
    creds = connect(square_sandbox)
    with pytest.raises(PermanentError, match="403 INSUFFICIENT_SCOPES"):
        square.subscribe(creds, "https://rapport.example/webhooks/square")


def test_refresh_keeps_the_refresh_token_and_renews_access(square_sandbox):
    creds = connect(square_sandbox)
    renewed = square.refresh_access_token(
        creds,
        application_id=square_sandbox.application_id,
        application_secret=square_sandbox.application_secret,
    )
    assert renewed["refresh_token"] == creds["refresh_token"]
    assert renewed["access_token"] != creds["access_token"]
    sent = square_sandbox.requests_to("POST", "/oauth2/token")[-1]
    assert sent.json["grant_type"] == "refresh_token" and "authorization" not in sent.headers
    customer = square_sandbox.seed_customer()
    square.fetch_client({**creds, **renewed}, customer["id"])


def test_a_revoked_grant_means_reconnecting(square_sandbox):
    creds = connect(square_sandbox)
    square_sandbox.revoke(creds["access_token"])
    customer = square_sandbox.seed_customer()
    with pytest.raises(AuthError):
        square.fetch_client(creds, customer["id"])
    with pytest.raises(AuthError):
        square.refresh_access_token(
            creds,
            application_id=square_sandbox.application_id,
            application_secret=square_sandbox.application_secret,
        )


@pytest.mark.parametrize("status", [400, 403])
def test_any_refusal_to_renew_means_reconnecting(square_sandbox, status):
    creds = connect(square_sandbox)
    square_sandbox.fail_next("/oauth2/token", status)
    with pytest.raises(AuthError, match="Square would not renew the access token"):
        square.refresh_access_token(
            creds,
            application_id=square_sandbox.application_id,
            application_secret=square_sandbox.application_secret,
        )


def test_an_expired_access_token_is_an_auth_error(square_sandbox):
    creds = connect(square_sandbox)
    square_sandbox.expire(creds["access_token"])
    with pytest.raises(AuthError, match="ACCESS_TOKEN_EXPIRED"):
        square.fetch_client(creds, square_sandbox.seed_customer()["id"])


def test_a_used_code_or_wrong_secret_is_refused(square_sandbox):
    code = square_sandbox.authorize(square.SCOPES)
    common = {"application_id": square_sandbox.application_id, "base_url": square_sandbox.base_url}
    with pytest.raises(AuthError):
        square.exchange_code(application_secret="wrong-secret", code=code, **common)
    square.exchange_code(application_secret=square_sandbox.application_secret, code=code, **common)
    with pytest.raises(PermanentError):
        square.exchange_code(application_secret=square_sandbox.application_secret, code=code,
                             **common)


def test_without_a_refresh_token_the_clinic_must_reconnect():
    with pytest.raises(AuthError):
        square.refresh_access_token({}, application_id="a", application_secret="s")


@pytest.mark.parametrize(
    "expires_at, due",
    [
        ("2026-12-25T12:00:00Z", False),  # fresh: 30 days left
        ("2026-12-18T12:00:01Z", False),  # a week old, less a second
        ("2026-12-18T12:00:00Z", True),  # a week old
        ("2026-11-26T12:00:00Z", True),  # about to expire
        ("2026-11-01T00:00:00Z", True),  # expired
        (None, False),  # a personal access token never expires
        ("yesterday-ish", True),
    ],
)
def test_tokens_are_refreshed_once_a_week_old(expires_at, due):
    credentials = {"access_token": "t"} if expires_at is None else {"expires_at": expires_at}
    assert square.needs_refresh(credentials, NOW) is due
