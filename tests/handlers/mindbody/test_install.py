"""The application's subscription, a site's activation link, and delivery of signed
events exactly as Mindbody sends them."""

from __future__ import annotations

import pytest

from handlers import mindbody
from handlers.base import (
    AuthError,
    ConnectProblem,
    InboundRequest,
    PermanentError,
    TransientError,
)
from tests.handlers.mindbody.shared import refused

URL = "https://rapport.example/webhooks/mindbody"


def test_the_subscription_is_created_then_activated(mb_sandbox):
    created = mindbody.subscribe(mb_sandbox.settings(), URL)
    post, patch = mb_sandbox.requests
    assert (post.method, post.path) == ("POST", "/api/v1/subscriptions")
    assert post.json == {"eventIds": list(mindbody.EVENT_TYPES), "eventSchemaVersion": 1,
                         "referenceId": "rapport", "webhookUrl": URL}
    assert (patch.method, patch.json) == ("PATCH", {"status": "Active"})
    assert patch.path == f"/api/v1/subscriptions/{created.subscription_id}"
    for sent in (post, patch):
        assert sent.headers["api-key"] == mb_sandbox.webhooks_api_key
    kept = mb_sandbox.subscriptions[created.subscription_id]
    assert (kept["status"], kept["messageSignatureKey"]) == ("Active", created.signature_key)
    assert created.notification_url == URL
    assert refused(mb_sandbox) == []


def test_the_public_api_key_does_not_open_the_webhooks_api(mb_sandbox):
    settings = mb_sandbox.settings(webhooks_api_key=mb_sandbox.api_key)
    with pytest.raises(AuthError, match="invalidAPIKey"):
        mindbody.subscribe(settings, URL)


def test_a_subscription_that_cannot_be_activated_is_deactivated_again(mb_sandbox):
    mb_sandbox.fail_next("/api/v1/subscriptions/", 503, times=2)
    with pytest.raises(TransientError):
        mindbody.subscribe(mb_sandbox.settings(), URL)
    (record,) = mb_sandbox.subscriptions.values()
    assert record["status"] == "DeactivatedByUser"
    assert [r.method for r in mb_sandbox.requests] == ["POST", "PATCH", "PATCH", "DELETE"]


def test_the_list_never_carries_the_key(mb_sandbox):
    created = mindbody.subscribe(mb_sandbox.settings(), URL)
    (listed,) = mindbody.subscriptions(mb_sandbox.settings())
    assert listed["subscriptionId"] == created.subscription_id
    assert "messageSignatureKey" not in listed


def test_without_a_webhooks_key_the_admin_is_told_what_to_set(mb_sandbox):
    with pytest.raises(ConnectProblem, match="RAPPORT_MINDBODY_WEBHOOKS_API_KEY"):
        mindbody.PLATFORM.subscribe_application(mb_sandbox.settings(webhooks_api_key=None), URL)


def test_events_are_delivered_signed_with_the_subscriptions_key(mb_sandbox, mb_client,
                                                                mb_next_visit, callback_receiver):
    created = mindbody.PLATFORM.subscribe_application(mb_sandbox.settings(), callback_receiver.url)
    (sent,) = mb_sandbox.set_status(-99, mb_next_visit["Id"], "Completed")
    (arrived,) = callback_receiver.received
    request = InboundRequest(body=arrived.body, headers=arrived.headers)
    mindbody.PLATFORM.verify(request, {"signature_keys": [created.signature_key]})
    (event,) = mindbody.PLATFORM.parse(request)
    assert (event.status, event.appointment_id, event.client.email) == (
        "completed", str(mb_next_visit["Id"]), "sam@example.com")
    assert mindbody.PLATFORM.delivery_id(request) == sent["messageId"]
    assert mindbody.PLATFORM.account_id(request) == "-99"


def test_a_pending_subscription_receives_nothing(mb_sandbox, mb_next_visit, callback_receiver):
    mb_sandbox.fail_next("/api/v1/subscriptions/", 400, times=1)
    with pytest.raises(PermanentError):
        mindbody.subscribe(mb_sandbox.settings(), callback_receiver.url)
    assert mb_sandbox.set_status(-99, mb_next_visit["Id"], "Completed") == []
    assert callback_receiver.received == []


def test_the_activation_link_is_read_before_the_site_is_activated(mb_sandbox):
    mb_sandbox.seed_site(5551234, activated=False)
    found = mindbody.activation(mb_sandbox.credentials(5551234))
    assert found["code"] == mb_sandbox.sites["5551234"]["activation_code"]
    assert found["code"] in found["link"]
    assert "authorization" not in mb_sandbox.requests[0].headers
