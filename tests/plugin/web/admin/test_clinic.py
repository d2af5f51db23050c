"""A clinic's connection page offers what its platform declares: the webhook URL and its
secrets (revealed on request, rotated by a button) for a clinic whose own system signs
its webhooks, a form of new keys for one connected with keys, a Connect button for one
connected through the platform's sign-in."""

from __future__ import annotations

import re

import pytest

from plugin.clinics import records
from plugin.store import database
from tests.support import console, installs


def secrets_of(app, key: str) -> list[str]:
    with app.app_context(), database.session() as db:
        return records.credentials(records.by_key(db, key))["inbound_secrets"]


def test_a_shared_secret_clinic_shows_its_url_and_rotates_its_secret(app, client, clinic):
    console.sign_in(app, client, "dana@harbour.example", clinic["key"])
    page = client.get(f"/admin/clinics/{clinic['key']}/").get_data(as_text=True)
    assert f'readonly value="{clinic["webhook_url"]}"' in page
    assert "<details>" in page and clinic["webhook_secret"] in page  # behind "Show"
    assert "Make a new secret" in page and "Accept only the newest" not in page

    rotated = console.post_form(client, f"/admin/clinics/{clinic['key']}/",
                                f"/admin/clinics/{clinic['key']}/secrets", action="rotate")
    assert rotated.status_code == 200
    old, new = secrets_of(app, clinic["key"])
    assert old == clinic["webhook_secret"] and new in rotated.get_data(as_text=True)
    assert "Accept only the newest" in rotated.get_data(as_text=True)

    retired = console.post_form(client, f"/admin/clinics/{clinic['key']}/",
                                f"/admin/clinics/{clinic['key']}/secrets", action="retire")
    assert "Only the newest webhook secret" in retired.get_data(as_text=True)
    assert secrets_of(app, clinic["key"]) == [new]


@pytest.fixture
def manual_square(app_factory, square_sandbox):
    app = app_factory(SQUARE_ENVIRONMENT="sandbox", SQUARE_BASE_URL=square_sandbox.base_url)
    with app.app_context(), database.session() as db:
        credentials = installs.manual_credentials(
            "square", access_token=square_sandbox.personal_access_token,
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
