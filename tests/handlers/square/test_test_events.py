"""Square's TestWebhookSubscription through the adapter, against the local Square over
real HTTP: Square delivers a signed sample event to the subscription's URL and says how
that URL answered; its refusals are Rapport's usual errors."""

from __future__ import annotations

import json

import pytest
import requests

import handlers
from handlers import square
from handlers.base import (
    AuthError,
    ConnectProblem,
    InboundRequest,
    MissingPermission,
    PermanentError,
    TestResult,
    TransientError,
)
from tests.support.servers import free_port

SQUARE = handlers.platform("square")


@pytest.fixture
def subscription(square_sandbox, callback_receiver):
    """The application's subscription, to the recording receiver's URL."""
    return square.subscribe(square_sandbox.credentials(), callback_receiver.url)


def settings(sandbox, **extra) -> dict:
    """The installation's Square settings, as the seam gives them."""
    return {"access_token": sandbox.personal_access_token, "base_url": sandbox.base_url,
            "environment": "sandbox", **extra}


def test_only_square_declares_test_events():
    assert [p.name for p in handlers.platforms() if p.capabilities.test_event] == ["square"]


def test_square_delivers_a_signed_sample_and_says_how_it_was_answered(
        square_sandbox, callback_receiver, subscription):
    callback_receiver.answer(200)
    result = SQUARE.send_test_event(settings(square_sandbox), subscription["subscription_id"])

    assert result == TestResult(reached=True, status=200, detail=result.detail)
    assert result.detail.startswith("a sample booking.created event (test ")
    (call,) = square_sandbox.requests_to(
        "POST", f"/v2/webhooks/subscriptions/{subscription['subscription_id']}/test")
    assert call.json == {"event_type": "booking.created"}
    assert call.headers["authorization"] == f"Bearer {square_sandbox.personal_access_token}"
    (delivered,) = callback_receiver.received
    inbound = InboundRequest(body=delivered.body, headers=delivered.headers)
    square.verify(inbound, {"signature_keys": [subscription["signature_key"]],
                            "notification_url": callback_receiver.url})  # raises unless signed so
    event = json.loads(delivered.body)
    assert event["type"] == "booking.created"
    assert event["merchant_id"] != square_sandbox.merchant_id  # a sample, nobody's
    assert square.merchant_id(inbound) == event["merchant_id"]


@pytest.mark.parametrize("status", [401, 404, 500])
def test_an_answer_other_than_2xx_is_not_reaching_rapport(square_sandbox, callback_receiver,
                                                          subscription, status):
    callback_receiver.answer(status)
    result = SQUARE.send_test_event(settings(square_sandbox), subscription["subscription_id"])
    assert (result.reached, result.status) == (False, status)


def test_a_url_nobody_answers_is_no_status(square_sandbox):
    created = square.subscribe(square_sandbox.credentials(),
                               f"http://127.0.0.1:{free_port()}/webhooks/square")
    result = SQUARE.send_test_event(settings(square_sandbox), created["subscription_id"])
    assert (result.reached, result.status) == (False, None)
    assert square_sandbox.test_events[0]["status"] is None


def test_the_call_goes_through_the_session_it_is_given(square_sandbox, callback_receiver,
                                                       subscription):
    """The seam counts the call as the clinic's through ``http``."""
    answered = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, **_: answered.append(response.url))
    SQUARE.send_test_event(settings(square_sandbox, http=session),
                           subscription["subscription_id"])
    assert answered == [
        f"{square_sandbox.base_url}/v2/webhooks/subscriptions/"
        f"{subscription['subscription_id']}/test"]


def test_without_the_applications_token_it_says_which_setting(square_sandbox):
    with pytest.raises(ConnectProblem, match="RAPPORT_SQUARE_ACCESS_TOKEN"):
        SQUARE.send_test_event(settings(square_sandbox, access_token=None), "wbhk_1")
    assert square_sandbox.requests == []


def test_squares_refusals_are_rapports_errors(square_sandbox, subscription):
    wanted = subscription["subscription_id"]
    with pytest.raises(PermanentError, match="404"):
        SQUARE.send_test_event(settings(square_sandbox), "wbhk_gone")
    with pytest.raises(AuthError):
        SQUARE.send_test_event(settings(square_sandbox, access_token="EAAA-wrong"), wanted)
    square_sandbox.fail_next("/v2/webhooks/subscriptions/", 503)
    with pytest.raises(TransientError):
        SQUARE.send_test_event(settings(square_sandbox), wanted)
    # A seller's OAuth token: Square wants the application's own for subscriptions.
    code = square_sandbox.authorize(square.SCOPES)
    tokens = square.exchange_code(
        application_id=square_sandbox.application_id,
        application_secret=square_sandbox.application_secret, code=code,
        environment="sandbox", base_url=square_sandbox.base_url, redirect_uri=None)
    with pytest.raises(MissingPermission):
        SQUARE.send_test_event(settings(square_sandbox, access_token=tokens["access_token"]),
                               wanted)
    assert square_sandbox.test_events == []


def test_the_stand_in_holds_the_request_to_squares_spec(square_sandbox, subscription):
    """Validated like its other endpoints: an unknown field, an event type the
    subscription does not have."""
    url = (f"{square_sandbox.base_url}/v2/webhooks/subscriptions/"
           f"{subscription['subscription_id']}/test")
    headers = {"Authorization": f"Bearer {square_sandbox.personal_access_token}"}
    unknown = requests.post(url, json={"event_type": "booking.created", "extra": 1},
                            headers=headers, timeout=10)
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["code"] == "UNKNOWN_BODY_PARAMETER"
    other = requests.post(url, json={"event_type": "payment.created"}, headers=headers,
                          timeout=10)
    assert other.status_code == 400 and other.json()["errors"][0]["field"] == "event_type"
    assert square_sandbox.test_events == []
