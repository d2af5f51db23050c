"""The HTTP layer: the shard's host, what every request carries, and Cliniko's answers as
Rapport's errors — against the local Cliniko."""

from __future__ import annotations

import base64
import socket
from datetime import timedelta

import pytest
import requests

from handlers.base import (
    AuthError,
    ConflictError,
    MissingPermission,
    PermanentError,
    TransientError,
)
from handlers.cliniko import PLATFORM, base_url, fetch_client, poll, split_key
from handlers.cliniko.api import InvalidKey, NotFound, call


@pytest.mark.parametrize(("key", "shard"), [
    ("MS0xLWl4SzYYYYdtR3V2HNOTAREALKEYwvNHdeW0pd-au2", "au2"),
    ("MS0xLWl4SzYYYYdtR3V2HNOTAREALKEYwvNHdeW0pd-uk1", "uk1"),
    ("MS0xLWl4SzYYYYdtR3V2HNOTAREALKEYwvNHdeW0pd-EU1", "eu1"),
    ("  MS0xLWl4SzYYYYdtR3V2-ca1\n", "ca1"),
    # Keys made before shards existed have no suffix: they belong to au1.
    ("MS0xLWl4SzYYYYdtR3V2HNOTAREALKEYwvNHdeW0pd", "au1"),
])
def test_the_shard_is_the_keys_suffix_and_chooses_the_host(key, shard):
    assert split_key(key) == (key.strip(), shard)
    assert base_url({"api_key": key}) == f"https://api.{shard}.cliniko.com/v1"


@pytest.mark.parametrize("key", ["", "   ", "MS0xLWl4-", "MS0x-australia", "MS0x-a1", "-au1"])
def test_a_key_without_a_usable_shard_is_refused(key):
    with pytest.raises(InvalidKey):
        split_key(key)
    with pytest.raises(AuthError):
        base_url({"api_key": key})


def test_base_url_setting_replaces_the_host_keeping_the_shard():
    creds = {"api_key": "abc-uk2", "base_url": "http://127.0.0.1:9/shards/{shard}/v1/"}
    assert base_url(creds) == "http://127.0.0.1:9/shards/uk2/v1"


def test_every_request_names_rapport_and_its_contact_and_authenticates_with_the_key(
        cliniko_sandbox, cliniko_creds, cliniko_patient):
    fetch_client(cliniko_creds, cliniko_patient["id"])
    PLATFORM.prepare_account(cliniko_creds)
    expected = "Basic " + base64.b64encode(f"{cliniko_sandbox.api_key}:".encode()).decode()
    assert len(cliniko_sandbox.requests) == 2
    for request in cliniko_sandbox.requests:
        assert request.headers["user-agent"] == "Rapport (ops@rapport.example)"
        assert request.headers["accept"] == "application/json"
        assert request.headers["authorization"] == expected
        assert request.shard == "au1"
    assert cliniko_sandbox.refused == []


def test_calls_go_through_the_callers_session(cliniko_sandbox, cliniko_creds, cliniko_patient):
    class Counting(requests.Session):
        calls = 0

        def request(self, *args, **kwargs):
            Counting.calls += 1
            assert kwargs["timeout"] == 5.0
            return super().request(*args, **kwargs)

    with Counting() as session:
        fetch_client({**cliniko_creds, "http": session}, cliniko_patient["id"])
        PLATFORM.prepare_account({**cliniko_creds, "http": session})
    assert Counting.calls == len(cliniko_sandbox.requests) == 2


def test_no_request_leaves_without_a_contact_email(cliniko_sandbox, cliniko_creds):
    for email in (None, "", "not-an-address", "ops@localhost"):
        with pytest.raises(PermanentError, match="RAPPORT_CLINIKO_CONTACT_EMAIL"):
            call({**cliniko_creds, "contact_email": email}, "GET", "/user")
    assert cliniko_sandbox.requests == []


def test_a_key_goes_to_its_own_shard_and_a_wrong_suffix_is_refused(cliniko_sandbox,
                                                                   cliniko_creds):
    uk_key = cliniko_sandbox.add_account("uk1")
    call({**cliniko_creds, "api_key": uk_key}, "GET", "/user")
    assert cliniko_sandbox.requests[-1].shard == "uk1"

    wrong = uk_key.rsplit("-", 1)[0] + "-au1"
    with pytest.raises(AuthError):
        call({**cliniko_creds, "api_key": wrong}, "GET", "/user")
    assert (cliniko_sandbox.requests[-1].shard, cliniko_sandbox.requests[-1].status) == ("au1", 401)


@pytest.mark.parametrize(("status", "error"), [
    (401, AuthError), (403, MissingPermission), (404, NotFound), (409, ConflictError),
    (422, PermanentError), (400, PermanentError), (500, TransientError),
    (502, TransientError), (503, TransientError), (408, TransientError),
    (301, PermanentError),
])
def test_answers_become_rapports_errors(cliniko_sandbox, cliniko_creds, status, error):
    cliniko_sandbox.fail_next("/user", status, headers={"Location": "https://elsewhere.example/"})
    with pytest.raises(error) as raised:
        call(cliniko_creds, "GET", "/user")
    assert str(status) in str(raised.value)
    # Nothing followed a redirect elsewhere, nothing was retried by the HTTP layer.
    assert len(cliniko_sandbox.requests) == 1


def test_429_honours_retry_after(cliniko_sandbox, cliniko_creds):
    cliniko_sandbox.fail_next("/user", 429, headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as throttled:
        call(cliniko_creds, "GET", "/user")
    assert throttled.value.retry_after == 7


def test_cliniko_s_own_429_is_read_from_x_ratelimit_reset_on_its_clock(cliniko_sandbox,
                                                                       cliniko_creds):
    cliniko_sandbox.rate_limit = 3
    for _ in range(3):
        call(cliniko_creds, "GET", "/user")
    cliniko_sandbox.clock.advance(seconds=20)
    with pytest.raises(TransientError) as throttled:
        call(cliniko_creds, "GET", "/user")
    # The first call leaves the minute 40 s from now (the stand-in rounds its reset up).
    assert 40 <= throttled.value.retry_after <= 41
    cliniko_sandbox.clock.advance(seconds=throttled.value.retry_after)
    assert call(cliniko_creds, "GET", "/user")["first_name"] == "Dana"


def test_a_timeout_is_transient(cliniko_sandbox, cliniko_creds):
    cliniko_sandbox.delay_next("/user", 3)
    with pytest.raises(TransientError, match="Timeout"):
        call({**cliniko_creds, "timeout": 0.3}, "GET", "/user")


def test_no_answer_at_all_is_transient(cliniko_creds):
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    creds = {**cliniko_creds, "base_url": f"http://127.0.0.1:{port}/shards/{{shard}}/v1"}
    with pytest.raises(TransientError, match="ConnectionError"):
        call(creds, "GET", "/user")


def test_a_success_without_json_is_transient(cliniko_sandbox, cliniko_creds):
    class Body(requests.Session):
        def request(self, *args, **kwargs):
            response = super().request(*args, **kwargs)
            response._content = b"<html>maintenance</html>"
            return response

    with Body() as session, pytest.raises(TransientError, match="without a JSON object"):
        call({**cliniko_creds, "http": session}, "GET", "/user")


def test_the_stand_in_refused_nothing_rapport_sent_on_a_normal_day(
        cliniko_sandbox, cliniko_creds, cliniko_patient):
    now = cliniko_sandbox.clock.now()
    cliniko_sandbox.seed_appointments(3, patient=cliniko_patient,
                                      first_start=now + timedelta(hours=1))
    cliniko_sandbox.clock.advance(hours=3)
    PLATFORM.prepare_account(cliniko_creds)
    poll(cliniko_creds, None, since=now, now=cliniko_sandbox.clock.now())
    fetch_client(cliniko_creds, cliniko_patient["id"])
    assert len(cliniko_sandbox.requests) == 4
    assert cliniko_sandbox.refused == []
    assert {r.status for r in cliniko_sandbox.requests} == {200}
