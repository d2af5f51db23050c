"""The HTTP layer: headers, the staff user token, and Mindbody's answers as Rapport's
errors, against the local Mindbody over real HTTP."""

from __future__ import annotations

import pytest

from handlers.base import AuthError, MissingPermission, PermanentError, TransientError
from handlers.mindbody import api
from tests.handlers.mindbody.shared import refused

CLIENTS = "/public/v6/client/clients"
ISSUE = "/public/v6/usertoken/issue"


def test_every_call_carries_the_api_key_the_site_and_a_staff_token(mb_sandbox, mb_creds,
                                                                  mb_client):
    api.public_call(mb_creds, "GET", "client/clients",
                    params={"request.clientIds": mb_client["Id"]})
    issue, read = mb_sandbox.requests
    assert (issue.method, issue.path) == ("POST", ISSUE)
    assert issue.json == {"Username": "_RapportSource", "Password": "source-secret"}
    assert "authorization" not in issue.headers
    for sent in (issue, read):
        assert sent.headers["api-key"] == mb_sandbox.api_key
        assert sent.headers["siteid"] == "-99"
    assert read.headers["authorization"] in mb_sandbox.tokens
    assert refused(mb_sandbox) == []


def test_the_token_is_issued_once_and_kept(mb_sandbox, mb_creds, mb_client):
    for _ in range(3):
        api.public_call(mb_creds, "GET", "client/clients")
    assert len(mb_sandbox.requests_to("POST", ISSUE)) == 1


def test_a_stored_token_is_used_without_issuing_one(mb_sandbox, mb_client):
    token, expires = api.issue_token(mb_sandbox.credentials())
    api.forget_tokens()
    stored = mb_sandbox.credentials(user_token=token, user_token_expires=expires.isoformat())
    api.public_call(stored, "GET", "client/clients")
    assert len(mb_sandbox.requests_to("POST", ISSUE)) == 1  # the one above, none since


def test_a_clinic_staff_login_is_used_when_given(mb_sandbox, mb_client):
    mb_sandbox.add_staff_login(-99, "frontdesk", "s3cret")
    creds = mb_sandbox.credentials(staff_username="frontdesk", staff_password="s3cret")
    api.public_call(creds, "GET", "client/clients")
    assert mb_sandbox.requests_to("POST", ISSUE)[0].json == {"Username": "frontdesk",
                                                              "Password": "s3cret"}


def test_a_kept_token_mindbody_refuses_is_replaced_once(mb_sandbox, mb_creds, mb_client):
    api.public_call(mb_creds, "GET", "client/clients")
    mb_sandbox.revoke_tokens()
    answer = api.public_call(mb_creds, "GET", "client/clients")
    assert answer["Clients"][0]["Id"] == mb_client["Id"]
    assert len(mb_sandbox.requests_to("POST", ISSUE)) == 2


def test_a_login_mindbody_refuses_is_an_auth_error(mb_sandbox, mb_client):
    creds = mb_sandbox.credentials(staff_username="frontdesk", staff_password="wrong")
    with pytest.raises(AuthError, match="InvalidLoginCredentials"):
        api.public_call(creds, "GET", "client/clients")


def test_a_site_that_has_not_activated_rapport_is_a_missing_permission(mb_sandbox):
    mb_sandbox.seed_site(5551234, activated=False)
    with pytest.raises(MissingPermission, match="DeniedAccess"):
        api.public_call(mb_sandbox.credentials(5551234), "GET", "client/clients")


def test_401_is_an_auth_error(mb_sandbox, mb_creds, mb_client):
    api.public_call(mb_creds, "GET", "client/clients")
    mb_sandbox.fail_next(CLIENTS, 401, times=2)
    with pytest.raises(AuthError):
        api.public_call(mb_creds, "GET", "client/clients")


def test_429_honours_retry_after(mb_sandbox, mb_creds, mb_client):
    api.public_call(mb_creds, "GET", "client/clients")
    mb_sandbox.fail_next(CLIENTS, 429, headers={"Retry-After": "17"})
    with pytest.raises(TransientError) as raised:
        api.public_call(mb_creds, "GET", "client/clients")
    assert raised.value.retry_after == 17


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(status, mb_sandbox, mb_creds, mb_client):
    api.public_call(mb_creds, "GET", "client/clients")
    mb_sandbox.fail_next(CLIENTS, status)
    with pytest.raises(TransientError) as raised:
        api.public_call(mb_creds, "GET", "client/clients")
    assert raised.value.retry_after is None


def test_a_slow_answer_is_a_timeout_and_transient(mb_sandbox, mb_client):
    creds = mb_sandbox.credentials(timeout=0.3)
    api.public_call(creds, "GET", "client/clients")
    mb_sandbox.delay_next(CLIENTS, 1.0)
    with pytest.raises(TransientError, match="Timeout"):
        api.public_call(creds, "GET", "client/clients")


def test_nothing_listening_is_transient(mb_sandbox):
    creds = mb_sandbox.credentials(base_url="http://127.0.0.1:9", timeout=1)
    with pytest.raises(TransientError, match="ConnectionError"):
        api.public_call(creds, "GET", "site/activationcode", staff=False)


def test_other_refusals_are_permanent_and_named(mb_sandbox, mb_creds, mb_client):
    with pytest.raises(PermanentError, match="InvalidParameter"):
        api.public_call(mb_creds, "GET", "client/clients", params={"request.nonsense": "1"})
    assert refused(mb_sandbox)[0][2]["Error"]["Code"] == "InvalidParameter"


def test_without_an_api_key_nothing_is_sent(mb_sandbox):
    with pytest.raises(PermanentError, match="RAPPORT_MINDBODY_API_KEY"):
        api.public_call(mb_sandbox.credentials(api_key=None), "GET", "client/clients")
    assert mb_sandbox.requests == []


def test_calls_go_through_the_session_the_caller_counts_with(mb_sandbox, mb_client):
    import requests

    class Counting(requests.Session):
        calls = 0

        def request(self, *args, **kwargs):
            Counting.calls += 1
            return super().request(*args, **kwargs)

    with Counting() as session:
        api.public_call(mb_sandbox.credentials(http=session), "GET", "client/clients")
    assert Counting.calls == len(mb_sandbox.requests) == 2
