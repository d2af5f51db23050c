"""A clinic's connection page offers what its platform declares: the webhook URL and its
secrets (revealed on request, rotated by a button) for a clinic whose own system signs
its webhooks, a form of new keys for one connected with keys, a Connect button for one
connected through the platform's sign-in."""

from __future__ import annotations

import re

import pytest

from plugin.clinics import connecting, records
from plugin.store import database
from tests.support import console
from tests.support.square import square_credentials


def secrets_of(app, key: str) -> list[str]:
    with app.app_context(), database.session() as db:
        return records.credentials(records.by_key(db, key))["inbound_secrets"]


def test_a_shared_secret_clinic_shows_its_url_and_rotates_its_secret(app, web, generic_clinic):
    console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])
    page = web.get(f"/admin/clinics/{generic_clinic['key']}/").get_data(as_text=True)
    assert f'readonly value="{generic_clinic["webhook_url"]}"' in page
    assert "<details>" in page and generic_clinic["webhook_secret"] in page  # behind "Show"
    assert "Make a new secret" in page and "Accept only the newest" not in page

    rotated = console.post_form(web, f"/admin/clinics/{generic_clinic['key']}/",
                                f"/admin/clinics/{generic_clinic['key']}/secrets", action="rotate")
    assert rotated.status_code == 200
    old, new = secrets_of(app, generic_clinic["key"])
    assert old == generic_clinic["webhook_secret"] and new in rotated.get_data(as_text=True)
    assert "Accept only the newest" in rotated.get_data(as_text=True)

    retired = console.post_form(web, f"/admin/clinics/{generic_clinic['key']}/",
                                f"/admin/clinics/{generic_clinic['key']}/secrets", action="retire")
    assert "Only the newest webhook secret" in retired.get_data(as_text=True)
    assert secrets_of(app, generic_clinic["key"]) == [new]


@pytest.fixture
def manual_square(app_factory, square_sandbox):
    app = app_factory(SQUARE_ENVIRONMENT="sandbox", SQUARE_BASE_URL=square_sandbox.base_url)
    with app.app_context(), database.session() as db:
        credentials = square_credentials(
            access_token=square_sandbox.personal_access_token,
            webhook_signature_key="key-1",
            notification_url="http://rapport.test/webhooks/square/harbour")
        records.create(db, name="Harbour", platform="square", credentials=credentials,
                       key="harbour")
    return app


def test_a_keyed_clinic_gets_a_form_of_its_platforms_fields(manual_square):
    app = manual_square
    client = console.sign_in(app, app.test_client(), "dana@harbour.example", "harbour")
    page = client.get("/admin/clinics/harbour/").get_data(as_text=True)
    assert 'type="password"' in page and 'name="add_signature_key"' in page
    assert 'name="retire_old_keys" type="checkbox"' in page

    added = console.post_form(client, "/admin/clinics/harbour/",
                              "/admin/clinics/harbour/credentials", add_signature_key="key-2")
    assert "Saved. 2 signature key(s) accepted." in added.get_data(as_text=True)

    refused = console.post_form(client, "/admin/clinics/harbour/",
                                "/admin/clinics/harbour/credentials", access_token="wrong")
    assert refused.status_code == 400
    error = re.search(r'id="f-access_token-error">([^<]+)<', refused.get_data(as_text=True))
    assert error and "Square refused the access token" in error.group(1)
    with app.app_context(), database.session() as db:
        stored = records.credentials(records.by_key(db, "harbour"))
    assert stored["signature_keys"] == ["key-1", "key-2"]
    assert stored["access_token"] != "wrong"

    empty = console.post_form(client, "/admin/clinics/harbour/",
                              "/admin/clinics/harbour/credentials")
    assert empty.status_code == 400 and "Give at least one new value" in empty.get_data(
        as_text=True)


def test_an_oauth_clinic_gets_a_connect_button(app_factory):
    app = app_factory(SQUARE_APPLICATION_ID="app", SQUARE_APPLICATION_SECRET="secret")
    with app.app_context(), database.session() as db:
        key = records.create(db, name="Harbour", platform="square",
                             credentials={"mode": "oauth"}, status="not_connected").clinic.key
    client = console.sign_in(app, app.test_client(), "dana@harbour.example", key)
    page = client.get(f"/admin/clinics/{key}/").get_data(as_text=True)
    assert "Not connected yet" in page
    assert f'href="http://rapport.test/connect/square/{key}">Connect Square</a>' in page
    assert client.get(f"/connect/square/{key}").status_code == 302


def test_a_callback_url_on_a_private_network_is_refused_next_to_its_field(app_factory):
    app = app_factory(ALLOW_PRIVATE_CALLBACKS=False)
    with app.app_context():
        added = connecting.add(name="Harbour Massage", platform_name="generic",
                               given={"callback_url": "https://93.184.216.34/hooks/rapport"},
                               timezone=None, language=None)
    clinic = {**added.shown}
    signed_in = console.sign_in(app, app.test_client(), "dana@harbour.example", clinic["key"])
    page = f"/admin/clinics/{clinic['key']}/"
    answer = console.post_form(signed_in, page, f"{page}callback",
                               callback_url="http://169.254.169.254/latest")
    assert answer.status_code == 400
    text = answer.get_data(as_text=True)
    assert 'id="callback-url-error"' in text and "169.254.169.254" in text
    with app.app_context(), database.session() as db:
        stored = records.credentials(records.by_key(db, clinic["key"]))
    assert stored["callback_url"] == clinic["callback_url"]


def test_the_callback_url_changes_and_its_secret_rotates_then_retires(app, generic_clinic, web):
    signed_in_admin = console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])
    page = f"/admin/clinics/{generic_clinic['key']}/"
    answer = console.post_form(signed_in_admin, page, f"{page}callback",
                               callback_url="https://93.184.216.34/hooks/rapport")
    assert answer.status_code == 200 and "now go to the new URL" in answer.get_data(as_text=True)
    rotated = console.post_form(signed_in_admin, page, f"{page}callback-secrets",
                                action="rotate")
    assert "New callback signing secret" in rotated.get_data(as_text=True)
    with app.app_context(), database.session() as db:
        stored = records.credentials(records.by_key(db, generic_clinic["key"]))
    assert stored["callback_url"] == "https://93.184.216.34/hooks/rapport"
    assert stored["outbound_secret"] != generic_clinic["callback_secret"]
    assert stored["previous_outbound_secrets"] == [generic_clinic["callback_secret"]]
    console.post_form(signed_in_admin, page, f"{page}callback-secrets", action="retire")
    with app.app_context(), database.session() as db:
        assert records.credentials(records.by_key(db, generic_clinic["key"])).get(
            "previous_outbound_secrets") == []
