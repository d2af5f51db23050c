"""Cliniko's declaration and how a clinic connects, against the local Cliniko."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

import handlers
from handlers.base import (
    AuthError,
    Completion,
    Connection,
    ConnectProblem,
    InboundRequest,
    MissingPermission,
    NotePlace,
    SignatureError,
    TransientError,
)
from handlers.cliniko import PLATFORM

PACKAGE = Path(handlers.__file__).parent / "cliniko"
KEY = "MS0xLWl4SzYYYYdtR3V2HNOTAREALKEYwvNHdeW0pd-uk1"
SETTINGS = {"contact_email": "ops@rapport.example"}


def test_declaration():
    caps = PLATFORM.capabilities
    assert (PLATFORM.name, PLATFORM.title) == ("cliniko", "Cliniko")
    assert caps.completion is Completion.POLLING
    assert caps.webhooks == frozenset()
    assert caps.connections == frozenset({Connection.API_KEY})
    assert caps.note_places == frozenset({NotePlace.PROFILE_NOTE, NotePlace.NEXT_BOOKING})
    assert (caps.requests_per_minute, caps.note_limit) == (200, 2000)
    assert not (caps.token_refresh or caps.subscription or caps.events_name_only)
    assert handlers.platform("cliniko") is PLATFORM
    assert PLATFORM.webhooks_of({"api_key": KEY}) is None


def test_settings_and_fields():
    assert [(s.name, s.default) for s in PLATFORM.settings] == [
        ("CONTACT_EMAIL", None), ("COMPLETION_GRACE_MINUTES", "15"), ("BASE_URL", None)]
    [connect] = PLATFORM.connect_fields
    assert (connect.name, connect.option, connect.secret, connect.tried) == (
        "api_key", "--api-key", True, False)
    [update] = PLATFORM.update_fields
    assert (update.option, update.secret, update.tried) == ("--api-key", True, True)


def test_the_adapter_imports_only_handlers_base_requests_and_marshmallow():
    allowed = re.compile(r"^(from|import) (__future__|collections|dataclasses|datetime|email|"
                         r"hashlib|json|re|typing|urllib|base64|requests|marshmallow|"
                         r"handlers\.base|handlers\.cliniko)\b")
    for source in PACKAGE.glob("*.py"):
        for line in source.read_text().splitlines():
            if line.startswith(("import ", "from ")):
                assert allowed.match(line), f"{source.name}: {line}"


def test_api_context_reads_the_settings():
    assert PLATFORM.api_context({**SETTINGS, "completion_grace_minutes": "30"}) == {
        "contact_email": "ops@rapport.example", "completion_grace_minutes": 30, "base_url": None}
    assert PLATFORM.api_context(SETTINGS)["completion_grace_minutes"] == 15
    with pytest.raises(ConnectProblem, match="COMPLETION_GRACE_MINUTES"):
        PLATFORM.api_context({**SETTINGS, "completion_grace_minutes": "a quarter hour"})


def test_credentials_from_an_api_key():
    assert PLATFORM.credentials_from({"api_key": f" {KEY} "}, SETTINGS) == {"api_key": KEY}
    with pytest.raises(ConnectProblem, match="--api-key is required"):
        PLATFORM.credentials_from({"api_key": None}, SETTINGS)
    with pytest.raises(ConnectProblem, match="--api-key: .*not a Cliniko shard"):
        PLATFORM.credentials_from({"api_key": "MS0xLWl4-australia"}, SETTINGS)
    with pytest.raises(ConnectProblem, match="RAPPORT_CLINIKO_CONTACT_EMAIL"):
        PLATFORM.credentials_from({"api_key": KEY}, {})


def test_prepare_account_tries_the_key_with_one_cheap_call(cliniko_sandbox, cliniko_creds):
    PLATFORM.prepare_account(cliniko_creds)
    [asked] = cliniko_sandbox.requests
    assert (asked.method, asked.path, asked.status) == ("GET", "/user", 200)


def test_a_key_of_another_shard_is_refused_and_the_admin_told_why(cliniko_sandbox,
                                                                  cliniko_creds):
    elsewhere = cliniko_sandbox.api_key.rsplit("-", 1)[0] + "-uk1"
    creds = {**cliniko_creds, "api_key": elsewhere}
    with pytest.raises(AuthError) as refused:
        PLATFORM.prepare_account(creds)
    message = PLATFORM.explain_refusal(refused.value, creds)
    assert "shard" in message and "nothing was saved" in message
    assert cliniko_sandbox.requests[-1].shard == "uk1"


@pytest.mark.parametrize(("status", "error", "says"), [
    (403, MissingPermission, "may see and edit patients"),
    (503, TransientError, "try again later"),
])
def test_other_refusals_explained(cliniko_sandbox, cliniko_creds, status, error, says):
    cliniko_sandbox.fail_next("/user", status)
    with pytest.raises(error) as refused:
        PLATFORM.prepare_account(cliniko_creds)
    assert says in PLATFORM.explain_refusal(refused.value, cliniko_creds)


def test_what_the_admin_is_shown_once_the_clinic_is_added():
    creds = {"api_key": KEY}
    shown = {item.key: item.value for item in PLATFORM.shown(creds)}
    assert shown == {"shard": "uk1", "checks": "every 5 minutes"}
    steps = " ".join(PLATFORM.next_steps(creds, "harbour"))
    assert "no webhooks" in steps and "every 5" in steps
    assert "rapport clinic send-test harbour" in steps
    assert "every 5 minutes" in PLATFORM.connected_message
    assert "rapport clinic cliniko harbour --api-key NEW" in PLATFORM.reconnect_hint(creds,
                                                                                    "harbour")


def test_a_new_api_key_replaces_the_old_one():
    creds, said = PLATFORM.updated_credentials({"api_key": "old-au1"}, {"api_key": KEY})
    assert creds == {"api_key": KEY} and "uk1" in said
    with pytest.raises(ConnectProblem):
        PLATFORM.updated_credentials({"api_key": KEY}, {"api_key": "x-y-z-1"})
    with pytest.raises(ConnectProblem, match="--api-key NEW"):
        PLATFORM.updated_credentials({"api_key": KEY}, {})


def test_nothing_posted_to_a_webhook_url_is_ever_accepted():
    with pytest.raises(SignatureError, match="sends no webhooks"):
        PLATFORM.verify(InboundRequest(body=b"{}", headers={}), {"api_key": KEY})


def test_the_platform_polls_and_reads_with_the_real_clock(cliniko_sandbox, cliniko_creds,
                                                          cliniko_patient, cliniko_note):
    # The stand-in's clock stands at the real time: no moving it in this test.
    now = cliniko_sandbox.clock.now()
    visit = cliniko_sandbox.seed_appointment(
        patient=cliniko_patient, starts_at=now + timedelta(days=2),
        updated_at=now - timedelta(minutes=3))
    page = PLATFORM.poll(cliniko_creds, None, since=now - timedelta(minutes=1))
    [event] = [e for r in page.deliveries for e in PLATFORM.parse(r)]
    assert (event.appointment_id, event.status, page.more) == (visit["id"], "booked", False)
    assert PLATFORM.fetch_appointment(cliniko_creds, visit["id"]).status == "booked"
    assert PLATFORM.fetch_client(cliniko_creds, cliniko_patient["id"]).email == "sam@example.com"
    assert PLATFORM.write_booking_note(cliniko_creds, visit["id"], cliniko_note()) is True
