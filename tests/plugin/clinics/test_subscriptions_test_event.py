"""Sending a test event to Rapport's application subscription through the seam: the
platform delivers a sample over real HTTP to Rapport on a real socket, whose receiver
acknowledges it (an account it does not know) and does nothing else; a clinic whose
subscription Rapport did not make is told so plainly, and a refusal never marks the
clinic as needing reconnecting."""

from __future__ import annotations

import json

import pytest

import handlers
from handlers.base import TestResult
from plugin.clinics import records, subscriptions
from plugin.store import database
from tests.support import event_tests
from tests.support.event_tests import connect_square
from tests.support.square import serving_square, square_credentials

connected_square = event_tests.connected_square  # the fixture, for this module
SQUARE = handlers.platform("square")


def send(connected):
    with connected.app.app_context():
        result = subscriptions.send_test_event(connected.clinic_id)
        return result, subscriptions.describe_test_event(SQUARE, result)


def test_the_platform_reaches_rapport_which_ignores_the_sample(connected_square,
                                                               square_sandbox, redis_conn):
    before, calls = connected_square.state(), connected_square.calls()
    queued = set(redis_conn.keys("rq:job:*"))

    result, (reached, message) = send(connected_square)

    assert (result.reached, result.status) == (True, 200)
    assert reached and message.startswith("Square reached Rapport: it answered 200.")
    (delivered,) = square_sandbox.test_events
    assert delivered["url"] == f"{connected_square.url}/webhooks/square"
    assert json.loads(delivered["answer"]) == {"status": "ignored", "reason": "unknown account"}
    assert connected_square.state() == before  # nothing stored, nothing changed
    assert set(redis_conn.keys("rq:job:*")) == queued  # nothing queued
    assert connected_square.calls() == calls + 1  # one call, counted as the clinic's


def test_a_sample_naming_a_connected_seller_sends_nothing(connected_square, square_sandbox,
                                                          square_drain, mailbox):
    """Were Square's sample ever about a seller Rapport follows: its booking is read back
    from Square first, and one Square does not have gets no check-in."""
    square_sandbox.test_event_merchant_id = square_sandbox.merchant_id
    result, _ = send(connected_square)
    assert (result.reached, result.status) == (True, 202)
    square_drain()
    assert mailbox.messages == []
    assert connected_square.state()["status"] == ("active", None)


def test_a_key_rapport_does_not_hold_is_a_refused_signature(connected_square, square_sandbox):
    (subscription,) = square_sandbox.subscriptions
    subscription["signature_key"] = "rotated-in-the-developer-console"
    result, (reached, message) = send(connected_square)
    assert (result.reached, result.status, reached) == (False, 401, False)
    assert "signature did not verify" in message
    assert f"{connected_square.url}/webhooks/square" in message


def test_a_refusal_of_the_applications_token_leaves_the_clinic_connected(
        connected_square, square_sandbox):
    square_sandbox.fail_next("/v2/webhooks/subscriptions/", 401)
    with pytest.raises(subscriptions.TestEventProblem, match="application credentials"):
        send(connected_square)
    assert connected_square.state()["status"] == ("active", None)
    square_sandbox.fail_next("/v2/webhooks/subscriptions/", 503)
    with pytest.raises(subscriptions.TestEventProblem, match="Try again in a few minutes"):
        send(connected_square)
    assert square_sandbox.test_events == []


def test_without_the_applications_token_it_names_the_setting(app_factory, square_sandbox,
                                                             connected_square):
    app = app_factory(BASE_URL=connected_square.url, SQUARE_ENVIRONMENT="sandbox",
                      SQUARE_BASE_URL=square_sandbox.base_url)
    with app.app_context(), pytest.raises(subscriptions.TestEventProblem,
                                          match="RAPPORT_SQUARE_ACCESS_TOKEN"):
        subscriptions.send_test_event(connected_square.clinic_id)


def test_a_manual_mode_clinic_is_told_its_subscription_is_not_rapports(square_app,
                                                                       square_sandbox):
    app, url = square_app
    with app.app_context():
        with database.session() as db:
            credentials = square_credentials(
                access_token=square_sandbox.personal_access_token,
                webhook_signature_key="harbour-key",
                notification_url=f"{url}/webhooks/square/harbour")
            clinic_id = records.create(db, name="Harbour", platform="square",
                                       credentials=credentials, key="harbour").clinic.id
        with pytest.raises(subscriptions.TestEventProblem) as refused:
            subscriptions.send_test_event(clinic_id)
    assert "made by hand in Square, not by Rapport" in str(refused.value)
    assert "the health page counts the events received" in str(refused.value)
    assert square_sandbox.requests == []


@pytest.fixture
def hand_made_subscription(app_factory, square_sandbox):
    """An installation whose application subscription was made in the Developer Console:
    its key is a setting, and Rapport holds no subscription id."""
    yield from serving_square(app_factory, square_sandbox,
                              SQUARE_WEBHOOK_SIGNATURE_KEY=["made-by-hand"])


def test_an_application_subscription_made_by_hand_cannot_be_tested(hand_made_subscription,
                                                                   square_sandbox):
    app, url = hand_made_subscription
    connected = connect_square(app, url)
    assert square_sandbox.subscriptions == []  # Rapport made none
    with app.app_context(), pytest.raises(subscriptions.TestEventProblem,
                                          match="made by hand, not by Rapport"):
        subscriptions.send_test_event(connected.clinic_id)


def test_before_any_clinic_connects_there_is_no_subscription_yet(square_app, square_sandbox):
    app, _ = square_app
    with app.app_context():
        with database.session() as db:
            clinic_id = records.create(db, name="Harbour", platform="square",
                                       credentials={"mode": "oauth"},
                                       status="not_connected").clinic.id
        with pytest.raises(subscriptions.TestEventProblem, match="no Square webhook "
                           "subscription yet"):
            subscriptions.send_test_event(clinic_id)


def test_a_platform_without_test_events_says_so(app, generic_clinic):
    with app.app_context():
        with database.session() as db:
            clinic_id = records.by_key(db, generic_clinic["key"]).id
        with pytest.raises(subscriptions.TestEventProblem, match="cannot be asked"):
            subscriptions.send_test_event(clinic_id)


@pytest.mark.parametrize(("result", "words"), [
    (TestResult(False, None), "could not reach Rapport: it got no answer from "
                              "http://rapport.test/webhooks/square"),
    (TestResult(False, 404), "answered 404: no webhook endpoint there"),
    (TestResult(False, 429), "answered 429: too many refused requests"),
    (TestResult(False, 503), "answered 503: Rapport could not store the event"),
    (TestResult(False, 400), "answered 400. Check that the subscription in Square sends to"),
])
def test_what_the_admin_reads_when_the_event_did_not_arrive(app, result, words):
    with app.app_context():
        reached, message = subscriptions.describe_test_event(SQUARE, result)
    assert not reached and words in message
