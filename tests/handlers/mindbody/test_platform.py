"""Mindbody's declaration and how a clinic connects by its site ID."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers import platform
from handlers.base import (
    AuthError,
    Completion,
    Connection,
    ConnectProblem,
    MissingPermission,
    NotePlace,
    TransientError,
    Webhooks,
)
from handlers.mindbody import PLATFORM, api

NOW = datetime(2026, 11, 25, 15, tzinfo=UTC)


def test_the_registry_finds_it_and_it_declares_what_it_does():
    assert platform("mindbody") is PLATFORM
    caps = PLATFORM.capabilities
    assert caps.completion is Completion.STATUS
    assert caps.note_places == {NotePlace.PROFILE_NOTE, NotePlace.NEXT_BOOKING}
    assert caps.connections == {Connection.API_KEY}
    assert caps.webhooks == {Webhooks.PER_APPLICATION}
    assert (caps.subscription, caps.token_refresh, caps.events_name_only) == (True, True, False)


def test_the_settings_it_needs():
    assert [s.name for s in PLATFORM.settings] == [
        "API_KEY", "SOURCE_NAME", "SOURCE_PASSWORD", "WEBHOOKS_API_KEY",
        "WEBHOOK_SIGNATURE_KEY", "NOTIFICATION_URL", "BASE_URL", "WEBHOOKS_BASE_URL"]
    assert [s.name for s in PLATFORM.settings if s.keys] == ["WEBHOOK_SIGNATURE_KEY"]
    assert [f.option for f in PLATFORM.connect_fields] == [
        "--site-id", "--staff-username", "--staff-password"]


def test_a_clinic_is_added_by_its_site_id(mb_sandbox):
    creds = PLATFORM.credentials_from({"site_id": " -99 "}, mb_sandbox.settings())
    assert creds == {"site_id": "-99"}
    assert PLATFORM.account_id_of(creds) == "-99"
    assert [s.value for s in PLATFORM.shown(creds)] == ["-99"]
    steps = "\n".join(PLATFORM.next_steps(creds, "harbour"))
    assert "/public/v6/site/activationcode" in steps and "SiteId: -99" in steps


@pytest.mark.parametrize("given, settings, option", [
    ({}, {}, "--site-id"),
    ({"site_id": "harbour"}, {}, "--site-id"),
    ({"site_id": "-99"}, {}, "RAPPORT_MINDBODY_API_KEY"),
    ({"site_id": "-99", "staff_username": "u"}, {"api_key": "k"}, "--staff-password"),
    ({"site_id": "-99"}, {"api_key": "k"}, "RAPPORT_MINDBODY_SOURCE_NAME"),
])
def test_what_is_missing_is_named(given, settings, option):
    with pytest.raises(ConnectProblem, match=option):
        PLATFORM.credentials_from(given, settings)


def test_a_staff_login_may_replace_the_source_credentials():
    creds = PLATFORM.credentials_from(
        {"site_id": "5551234", "staff_username": "frontdesk", "staff_password": "pw"},
        {"api_key": "k"})
    assert creds == {"site_id": "5551234", "staff_username": "frontdesk", "staff_password": "pw"}


def test_prepare_account_tries_the_site_with_one_call(mb_sandbox):
    api.forget_tokens()
    PLATFORM.prepare_account(mb_sandbox.credentials())
    assert [(r.method, r.path, r.status) for r in mb_sandbox.requests] == [
        ("POST", "/public/v6/usertoken/issue", 200)]


def test_a_site_not_yet_approved_is_explained_with_its_activation_link(mb_sandbox):
    mb_sandbox.seed_site(5551234, activated=False)
    creds = mb_sandbox.credentials(5551234)
    with pytest.raises(MissingPermission) as raised:
        PLATFORM.prepare_account(creds)
    told = PLATFORM.explain_refusal(raised.value, creds)
    code = mb_sandbox.sites["5551234"]["activation_code"]
    assert code in told and "ActivationLink" in told and "nothing was saved" in told
    mb_sandbox.activate(5551234)
    PLATFORM.prepare_account(creds)  # approved: the same command now succeeds


def test_mindbody_not_answering_is_said_as_such(mb_sandbox):
    told = PLATFORM.explain_refusal(TransientError("503"), mb_sandbox.credentials())
    assert told.startswith("Mindbody did not answer")


def test_the_user_token_is_renewed_before_it_expires(mb_sandbox):
    creds = {"site_id": "-99"}
    assert PLATFORM.needs_refresh(creds, NOW) is True
    renewed = PLATFORM.refresh({**creds, "timeout": 5}, mb_sandbox.settings())
    assert set(renewed) == {"site_id", "user_token", "user_token_expires", "user_token_issued_at"}
    assert renewed["user_token"] in mb_sandbox.tokens
    assert PLATFORM.needs_refresh(renewed, datetime.now(UTC)) is False
    expires = datetime.fromisoformat(renewed["user_token_expires"])
    assert PLATFORM.needs_refresh(renewed, expires - timedelta(hours=1)) is True
    assert PLATFORM.token_issued_at(renewed) is not None


def test_a_refused_renewal_is_an_auth_error(mb_sandbox):
    settings = mb_sandbox.settings(source_password="changed")
    with pytest.raises(AuthError):
        PLATFORM.refresh({"site_id": "-99"}, settings)


def test_new_staff_credentials_replace_the_old_and_the_kept_token():
    old = {"site_id": "-99", "user_token": "t", "user_token_expires": NOW.isoformat()}
    new, said = PLATFORM.updated_credentials(old, {"staff_username": "u", "staff_password": "p"})
    assert new == {"site_id": "-99", "staff_username": "u", "staff_password": "p"}
    assert "u" in said
    assert "--staff-username" in PLATFORM.reconnect_hint(old, "harbour")


def test_signature_keys_of_a_subscription_made_by_hand_come_from_the_settings():
    assert PLATFORM.application_signature_keys({"webhook_signature_key": ["a", "b"]}) == ["a", "b"]
    assert PLATFORM.application_signature_keys({"webhook_signature_key": "a"}) == ["a"]
    assert PLATFORM.application_signature_keys({}) == []
