"""handlers/acuity/api.py: how Rapport calls Acuity (Basic auth, explicit timeouts, through
the caller's session) and how each of Acuity's answers becomes Rapport's error."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from handlers.acuity import api
from handlers.base import AuthError, ConflictError, PermanentError, TransientError


class CountingSession(requests.Session):
    """What the caller puts in ``credentials["http"]`` to count a clinic's calls."""

    def __init__(self):
        super().__init__()
        self.calls: list[dict] = []

    def request(self, method, url, **kwargs):
        self.calls.append({"method": method, "url": url, **kwargs})
        return super().request(method, url, **kwargs)


def test_calls_use_basic_auth_with_the_user_id_and_api_key(acuity_stand_in, acuity_creds):
    assert api.call(acuity_creds, "GET", "/me")["id"] == int(acuity_stand_in.user_id)
    [me] = acuity_stand_in.requests
    user_key = f"{acuity_stand_in.user_id}:{acuity_stand_in.api_key}".encode()
    assert me.headers["authorization"] == "Basic " + base64.b64encode(user_key).decode()
    assert me.headers["accept"] == "application/json"


def test_every_call_goes_through_the_callers_session_with_a_timeout(acuity_creds):
    session = CountingSession()
    api.call({**acuity_creds, "http": session}, "GET", "/me")
    api.call({**acuity_creds, "http": session, "timeout": None}, "GET", "/webhooks")
    assert [call["timeout"] for call in session.calls] == [5.0, api.DEFAULT_TIMEOUT]
    assert all(call["url"].startswith(acuity_creds["base_url"] + "/api/v1/")
               for call in session.calls)


def test_acuitys_own_host_unless_the_installation_names_a_stand_in():
    assert api.base_url({}) == "https://acuityscheduling.com"
    assert api.base_url({"base_url": "http://127.0.0.1:8765/"}) == "http://127.0.0.1:8765"


def test_no_credentials_is_an_auth_error_before_any_request(acuity_stand_in, acuity_creds):
    with pytest.raises(AuthError, match="no Acuity user ID"):
        api.call({**acuity_creds, "api_key": ""}, "GET", "/me")
    assert acuity_stand_in.requests == []


@pytest.mark.parametrize(("status", "error"), [
    (401, AuthError),
    (403, PermanentError),
    (404, api.NotFound),
    (405, PermanentError),
    (409, ConflictError),
    (400, PermanentError),
    (408, TransientError),
    (429, TransientError),
    (500, TransientError),
    (503, TransientError),
])
def test_each_answer_becomes_rapports_error(status, error, acuity_stand_in, acuity_creds):
    acuity_stand_in.fail_next("/api/v1/me", status)
    with pytest.raises(error) as raised:
        api.call(acuity_creds, "GET", "/me")
    assert f"{status} " in str(raised.value)
    assert "failure injected by the stand-in" in str(raised.value)


def test_retry_after_in_seconds_or_as_a_date(acuity_stand_in, acuity_creds):
    acuity_stand_in.fail_next("/api/v1/me", 429, headers={"Retry-After": "12"})
    with pytest.raises(TransientError) as seconds:
        api.call(acuity_creds, "GET", "/me")
    assert seconds.value.retry_after == 12.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    acuity_stand_in.fail_next("/api/v1/me", 429, headers={"Retry-After": later})
    with pytest.raises(TransientError) as date:
        api.call(acuity_creds, "GET", "/me")
    assert 60 < date.value.retry_after <= 90


def test_acuitys_error_code_and_message_are_kept(acuity_stand_in, acuity_creds):
    with pytest.raises(api.NotFound) as missing:
        api.call(acuity_creds, "GET", "/appointments/424242")
    assert "not_found" in str(missing.value) and "424242" in str(missing.value)


def test_an_empty_success_is_none(callback_receiver):
    creds = {"user_id": "1", "api_key": "k", "base_url": callback_receiver.url.rsplit("/hooks",
                                                                                      1)[0]}
    callback_receiver.answer(204)
    assert api.call(creds, "DELETE", "/webhooks/3") is None
    [deleted] = callback_receiver.received
    assert deleted.method == "DELETE" and deleted.path == "/api/v1/webhooks/3"


@pytest.mark.parametrize(("value", "path"), [("54321", "/appointments/54321"),
                                             (54321, "/appointments/54321")])
def test_appointment_paths(value, path):
    assert api.appointment_path(value) == path


@pytest.mark.parametrize("value", ["", "0", "-1", "1.5", "1/2", "%2e%2e", "1" * 21, None])
def test_appointment_paths_take_ids_only(value):
    with pytest.raises(PermanentError):
        api.appointment_path(value)
