"""handlers/acuity/platform.py: Acuity's declaration and how a clinic connects, changes its
API key and is told what to do next."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import handlers
from handlers import acuity
from handlers.base import (
    AuthError,
    Completion,
    Connection,
    ConnectProblem,
    NotePlace,
    SignatureError,
    TransientError,
    Webhooks,
)

PLATFORM = acuity.PLATFORM
PACKAGE = Path(acuity.__file__).parent


def test_the_registry_finds_acuity():
    assert handlers.platform("acuity") is PLATFORM
    assert (PLATFORM.name, PLATFORM.title) == ("acuity", "Acuity Scheduling")


def test_the_declaration():
    capabilities = PLATFORM.capabilities
    assert capabilities.completion is Completion.END_TIME
    assert capabilities.note_places == {NotePlace.PROFILE_NOTE, NotePlace.NEXT_BOOKING}
    assert capabilities.connections == {Connection.API_KEY}
    assert capabilities.webhooks == {Webhooks.PER_CLINIC}
    assert capabilities.subscription and capabilities.events_name_only
    assert capabilities.business_locale and not capabilities.token_refresh
    assert capabilities.requests_per_minute == 600  # 10 a second, documented
    assert capabilities.note_limit * 2 <= acuity.NOTES_LIMIT


def test_settings_and_fields():
    assert [s.name for s in PLATFORM.settings] == ["BASE_URL"]
    assert [f.option for f in PLATFORM.connect_fields] == ["--user-id", "--api-key",
                                                          "--manual-webhooks"]
    assert [f.option for f in PLATFORM.update_fields] == ["--api-key", "--retire-old-keys"]
    api_key = PLATFORM.update_fields[0]
    assert api_key.secret and api_key.tried
    assert PLATFORM.connect_fields[2].flag and PLATFORM.update_fields[1].flag


def test_the_adapter_imports_only_handlers_base_requests_and_marshmallow():
    for module in PACKAGE.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top not in ("plugin", "questionnaires"), f"{module.name} imports {name}"
                if top == "handlers":
                    assert name in ("handlers.base",) or name.startswith("handlers.acuity"), \
                        f"{module.name} imports {name}"
        assert len(module.read_text(encoding="utf-8").splitlines()) < 400, module.name


# --- connecting -------------------------------------------------------------------------


def test_credentials_from_the_user_id_and_api_key():
    creds = PLATFORM.credentials_from({"user_id": " 11145481 ", "api_key": "abc123"}, {})
    assert creds == {"user_id": "11145481", "api_key": "abc123", "previous_api_keys": [],
                     "manual_webhooks": False}


@pytest.mark.parametrize(("given", "message"), [
    ({}, "--user-id and --api-key required"),
    ({"user_id": "11145481"}, "--api-key required"),
    ({"api_key": "abc"}, "--user-id required"),
    ({"user_id": "owner@harbour.example", "api_key": "abc"}, "numeric user ID"),
])
def test_credentials_from_says_what_is_missing(given, message):
    with pytest.raises(ConnectProblem, match=message):
        PLATFORM.credentials_from({"user_id": None, "api_key": None, **given}, {})


def test_a_clinic_connects_against_the_installations_stand_in(acuity_stand_in):
    settings = {"base_url": acuity_stand_in.base_url}
    creds = {**PLATFORM.credentials_from({"user_id": acuity_stand_in.user_id,
                                          "api_key": acuity_stand_in.api_key}, settings),
             **PLATFORM.api_context(settings)}
    PLATFORM.prepare_account(creds)
    assert PLATFORM.business_locale(creds).timezone == "America/New_York"
    assert PLATFORM.business_locale(creds).language is None
    assert PLATFORM.api_context({}) == {"base_url": None}


def test_a_refused_key_is_explained_with_where_to_find_the_right_one(acuity_stand_in,
                                                                     acuity_creds):
    wrong = {**acuity_creds, "api_key": "typo"}
    with pytest.raises(AuthError) as refused:
        PLATFORM.prepare_account(wrong)
    text = PLATFORM.explain_refusal(refused.value, wrong)
    assert "user ID 11145481" in text and "Integrations → API → View credentials" in text
    assert "try again" in PLATFORM.explain_refusal(TransientError("503"), wrong)


def test_rapport_registers_the_webhooks_itself(acuity_stand_in, acuity_creds):
    url = "https://rapport.example/webhooks/acuity/harbour"
    kept = PLATFORM.subscribe_clinic(acuity_creds, url)
    creds = {**acuity_creds, **kept}
    assert len(kept["webhook_ids"]) == 3
    assert PLATFORM.shown(creds) == []
    steps = "\n".join(PLATFORM.next_steps(creds, "harbour"))
    assert "registered the webhook URL in Acuity itself" in steps
    assert "rapport clinic send-test harbour" in steps


def test_manual_webhooks_say_exactly_where_to_paste_the_url(acuity_stand_in, acuity_creds):
    creds = {**acuity_creds, "manual_webhooks": True}
    assert PLATFORM.subscribe_clinic(creds, "https://rapport.example/w/acuity/h") == {}
    assert acuity_stand_in.requests == []
    [where] = PLATFORM.shown(creds)
    assert where.value == "Acuity → Integrations → API → Webhooks (Set Up)"
    steps = "\n".join(PLATFORM.next_steps(creds, "harbour"))
    assert "scheduled, a rescheduled and a canceled" in steps
    assert "'changed') empty" in steps and "main admin" in steps


def test_the_reconnect_hint_is_the_command_to_run():
    hint = PLATFORM.reconnect_hint({}, "harbour")
    assert "rapport clinic acuity harbour --api-key NEW" in hint


# --- changing the API key -------------------------------------------------------------------


def test_a_new_api_key_keeps_the_old_one_for_signatures_until_retired(acuity_body,
                                                                      acuity_request):
    creds = PLATFORM.credentials_from({"user_id": "1", "api_key": "old"}, {})
    rotated, said = PLATFORM.updated_credentials(creds, {"api_key": "new"})
    assert (rotated["api_key"], rotated["previous_api_keys"]) == ("new", ["old"])
    assert said == "2 API key(s) accepted for webhook signatures."
    body = acuity_body("scheduled__documented")
    PLATFORM.verify(acuity_request(body, key="old"), rotated)
    PLATFORM.verify(acuity_request(body, key="new"), rotated)
    retired, said = PLATFORM.updated_credentials(rotated, {"retire_old_keys": True})
    assert retired["previous_api_keys"] == [] and said.startswith("1 API key")
    with pytest.raises(SignatureError):
        PLATFORM.verify(acuity_request(body, key="old"), retired)
    assert creds["api_key"] == "old"  # the stored credentials are not changed in place


def test_giving_the_same_key_again_adds_nothing():
    creds = {"user_id": "1", "api_key": "same", "previous_api_keys": ["older"]}
    again, _ = PLATFORM.updated_credentials(creds, {"api_key": "same"})
    assert again["previous_api_keys"] == ["older"]


def test_an_update_with_nothing_to_change_says_what_to_give():
    with pytest.raises(ConnectProblem, match="--api-key NEW, or --retire-old-keys"):
        PLATFORM.updated_credentials({"api_key": "k"}, {"api_key": None})


# --- the calls behind the declaration -------------------------------------------------------


def test_the_platform_reads_and_writes_through_the_adapter(acuity_stand_in, acuity_creds,
                                                          acuity_body, acuity_request,
                                                          acuity_keys):
    visit = acuity_stand_in.seed_appointment(start="2026-11-25T15:00:00Z")
    request = acuity_request(acuity_body("scheduled__documented"))
    PLATFORM.verify(request, acuity_keys)
    assert PLATFORM.delivery_id(request) == acuity.delivery_id(request)
    assert PLATFORM.parse(request)[0].appointment_id == "54321"
    event = PLATFORM.fetch_appointment(acuity_creds, str(visit["id"]))
    assert PLATFORM.fetch_client(acuity_creds, event.client.id).email == "sam@example.com"
