"""handlers/acuity/install.py: trying the credentials, the time zone, and the clinic's
webhooks registered through Acuity's Webhooks API, against the stand-in."""

from __future__ import annotations

import pytest

from handlers import acuity
from handlers.acuity import install
from handlers.base import AuthError, ConnectProblem

URL = "https://rapport.example/webhooks/acuity/harbour"


def test_subscribe_registers_the_three_appointment_events(acuity_stand_in, acuity_creds):
    kept = acuity.subscribe(acuity_creds, URL)
    assert [(w["event"], w["target"], w["status"]) for w in acuity_stand_in.webhooks] == [
        ("appointment.scheduled", URL, "active"),
        ("appointment.rescheduled", URL, "active"),
        ("appointment.canceled", URL, "active"),
    ]
    assert kept == {"webhook_ids": [w["id"] for w in acuity_stand_in.webhooks],
                    "webhook_url": URL}
    posted = [r.json for r in acuity_stand_in.requests_to("POST", "/api/v1/webhooks")]
    assert posted == [{"event": event, "target": URL} for event in acuity.EVENTS]
    assert acuity_stand_in.rejected == []


def test_subscribing_again_adds_nothing(acuity_stand_in, acuity_creds):
    first = acuity.subscribe(acuity_creds, URL)
    second = acuity.subscribe(acuity_creds, URL)
    assert first == second
    assert len(acuity_stand_in.webhooks) == 3
    assert len(acuity_stand_in.requests_to("POST", "/api/v1/webhooks")) == 3


def test_a_changed_webhook_to_the_clinics_url_is_replaced(acuity_stand_in, acuity_creds):
    """With ``changed`` beside the specific events Acuity would send each event twice."""
    acuity_stand_in.add_webhook("appointment.changed", URL)
    elsewhere = acuity_stand_in.add_webhook("appointment.changed", "https://zaps.example/hook")
    acuity.subscribe(acuity_creds, URL)
    assert sorted((w["event"], w["target"]) for w in acuity_stand_in.webhooks) == sorted([
        ("appointment.changed", elsewhere["target"]),
        *[(event, URL) for event in acuity.EVENTS],
    ])


def test_the_webhook_limit_is_said_before_anything_is_created(acuity_stand_in, acuity_creds):
    for n in range(acuity.WEBHOOK_LIMIT - 2):
        acuity_stand_in.add_webhook("appointment.scheduled", f"https://other{n}.example/h")
    with pytest.raises(ConnectProblem, match="allows 25.*--manual-webhooks"):
        acuity.subscribe(acuity_creds, URL)
    assert acuity_stand_in.requests_to("POST", "/api/v1/webhooks") == []


@pytest.mark.parametrize("url", ["https://rapport.example:8443/webhooks/acuity/harbour",
                                 "http://127.0.0.1:5000/webhooks/acuity/harbour",
                                 "ftp://rapport.example/webhooks/acuity/harbour",
                                 "/webhooks/acuity/harbour"])
def test_a_url_acuity_cannot_deliver_to_is_refused_up_front(url, acuity_stand_in,
                                                            acuity_creds):
    with pytest.raises(ConnectProblem, match="port 443"):
        acuity.subscribe(acuity_creds, url)
    assert acuity_stand_in.requests == []


def test_plain_http_on_port_80_is_allowed(acuity_stand_in, acuity_creds):
    acuity.subscribe(acuity_creds, "http://rapport.example/webhooks/acuity/harbour")
    assert len(acuity_stand_in.webhooks) == 3


def test_a_refused_registration_says_what_to_do(acuity_stand_in, acuity_creds):
    acuity_stand_in.fail_next("/api/v1/webhooks", 400, method="POST")
    with pytest.raises(ConnectProblem, match="refused to register.*Integrations"):
        acuity.subscribe(acuity_creds, URL)


def test_unsubscribe_ends_the_webhooks_and_tolerates_gone_ones(acuity_stand_in, acuity_creds):
    kept = acuity.subscribe(acuity_creds, URL)
    acuity_stand_in.webhooks.pop(0)  # removed in Acuity meanwhile
    assert acuity.unsubscribe(acuity_creds, kept["webhook_ids"]) == 2
    assert acuity_stand_in.webhooks == []


def test_the_account_is_opened_with_one_call(acuity_stand_in, acuity_creds):
    assert install.account(acuity_creds)["timezone"] == "America/New_York"
    assert install.timezone_of(acuity_creds) == "America/New_York"
    assert [r.path for r in acuity_stand_in.requests] == ["/api/v1/me", "/api/v1/me"]


def test_wrong_credentials_fail_on_the_account(acuity_creds):
    with pytest.raises(AuthError):
        install.account({**acuity_creds, "api_key": "wrong"})
