"""Install steps for a Square seller: Rapport's customer attribute definition and the
application's webhook subscription, and a test event sent to that subscription.

Square facts this module relies on, and where they are documented:

- A definition's key "must be unique per application, seller, and resource type" (spec,
  ``CustomAttributeDefinition.key``), and RetrieveCustomerCustomAttributeDefinition,
  ``GET /v2/customers/custom-attribute-definitions/{key}`` (CUSTOMERS_READ), reads it
  back: so the definition is read before it is created.
  https://developer.squareup.com/reference/square/customercustomattributes-api/retrieve-customer-custom-attribute-definition
- TestWebhookSubscription, ``POST /v2/webhooks/subscriptions/{subscription_id}/test``
  ``{"event_type"}``: "Tests a webhook subscription by sending a test event to the
  notification URL"; the event type "must be contained in the list of event types in the
  Subscription". The answer's ``subscription_test_result`` holds ``status_code``, "the
  status code returned by the subscription notification URL", and ``payload``, the event
  sent (spec, ``TestWebhookSubscriptionRequest``, ``SubscriptionTestResult``). Like every
  Webhook Subscriptions call it takes the application's personal access token, never an
  OAuth token.
  https://developer.squareup.com/reference/square/webhooksubscriptions-api/test-webhook-subscription,
  https://developer.squareup.com/reference/square/objects/SubscriptionTestResult,
  https://developer.squareup.com/docs/webhooks/webhook-subscriptions-api ("Trigger a test
  notification to the subscription's notification URL")

Not confirmed, and handled defensively:

- What a test event's body holds. The spec's example is a canned ``payment.created``
  for a merchant of its own, which suggests sample data rather than a real seller's. The
  test asks for ``booking.created`` (in every subscription Rapport makes), not for
  ``oauth.authorization.revoked``, which Rapport acts on at once: were the sample ever to
  name a connected seller, its booking is read back from Square before anything is sent
  (a booking Square does not have gets no check-in, nor one that ended days before).
- ``status_code`` when Square got no answer at all (the spec lets it be null): read as
  "no answer". How long Square waits for one: it gives deliveries 10 s
  (:mod:`~handlers.square.webhooks`), so the call waits for its answer up to 20 s, the
  adapter's own read timeout, whatever the installation's ``HTTP_TIMEOUT``.
- Square's answer to a duplicate custom attribute definition key and to a retrieve of an
  undefined key (neither is in the spec or the guides; the definition is read back after
  any refused create, and is taken to exist when it is there).
- Where exactly the Square Dashboard shows a read-only custom attribute.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from handlers.base import ConflictError, MissingPermission, PermanentError, TestResult
from handlers.square.api import SQUARE_VERSION, _call, _key, _segment
from handlers.square.webhooks import APPLICATION_EVENT_TYPES

ATTRIBUTE_KEY = "rapport-alliance"
TEST_EVENT_TYPE = "booking.created"
STRING_SCHEMA = (
    "https://developer-production-s.squarecdn.com/schemas/v1/common.json#squareup.common.String"
)


def ensure_attribute_definition(credentials: Mapping[str, Any]) -> dict[str, Any]:
    """Rapport's read-only customer attribute, defined once per seller.

    Retrieved first (one read, and what every reconnection finds); created only when
    the read finds none. Square documents neither its answer to an undefined key (404
    is its usual one) nor to a second definition with the same key, so a refused create
    is followed by another read: when the definition is there now (created meanwhile,
    or refused as a duplicate), that is success; otherwise the create's error stands.
    """
    path = f"/v2/customers/custom-attribute-definitions/{ATTRIBUTE_KEY}"
    try:
        return _call(credentials, "GET", path).get("custom_attribute_definition") or {}
    except MissingPermission:
        raise
    except PermanentError:
        pass  # not defined yet (404); any other refusal, the create below reports
    body = {
        # Fresh each time: a constant key might be shared by every seller.
        "idempotency_key": "rapport-def-" + uuid.uuid4().hex,
        "custom_attribute_definition": {
            "key": ATTRIBUTE_KEY,
            "name": "Rapport alliance",
            "description": "Latest therapeutic alliance check-in summary, written by Rapport.",
            "schema": {"$ref": STRING_SCHEMA},
            "visibility": "VISIBILITY_READ_ONLY",
        },
    }
    try:
        answer = _call(credentials, "POST", "/v2/customers/custom-attribute-definitions", body=body)
    except (ConflictError, PermanentError) as refused:
        try:
            existing = _call(credentials, "GET", path).get("custom_attribute_definition")
        except PermanentError:
            existing = None
        if not existing:
            raise refused
        return existing
    return answer.get("custom_attribute_definition") or {"key": ATTRIBUTE_KEY}


def subscribe(credentials: Mapping[str, Any], notification_url: str) -> dict[str, Any]:
    """Create the webhook subscription for booking events.

    Square ties subscriptions to the application, so ``credentials["access_token"]`` must
    be the application's personal access token, not a seller's OAuth token.
    """
    body = {
        "idempotency_key": _key("rapport-sub-", notification_url, *APPLICATION_EVENT_TYPES),
        "subscription": {
            "name": "Rapport",
            "event_types": list(APPLICATION_EVENT_TYPES),
            "notification_url": notification_url,
            "api_version": SQUARE_VERSION,
        },
    }
    subscription = (
        _call(credentials, "POST", "/v2/webhooks/subscriptions", body=body).get("subscription")
        or {}
    )
    if not subscription.get("id") or not subscription.get("signature_key"):
        raise PermanentError("Square created no subscription id or signature key")
    return {
        "subscription_id": subscription["id"],
        "signature_key": subscription["signature_key"],
        "notification_url": subscription.get("notification_url", notification_url),
        "event_types": subscription.get("event_types", list(APPLICATION_EVENT_TYPES)),
    }


def send_test_event(credentials: Mapping[str, Any], subscription_id: str) -> TestResult:
    """Have Square send a sample ``booking.created`` event to the subscription's URL now,
    and say how that URL answered. ``credentials["access_token"]``: the application's
    personal access token, as for :func:`subscribe`. One call."""
    path = f"/v2/webhooks/subscriptions/{_segment(subscription_id)}/test"
    # Square answers once the delivery has been answered (it allows 10 s): the adapter's
    # own read timeout (20 s, api.DEFAULT_TIMEOUT), not the installation's.
    answer = _call({**credentials, "timeout": None}, "POST", path,
                   body={"event_type": TEST_EVENT_TYPE})
    result = answer.get("subscription_test_result")
    if not isinstance(result, dict):
        errors = [e for e in answer.get("errors") or () if isinstance(e, dict)]
        said = errors[0].get("detail") or errors[0].get("code") if errors else "no result"
        raise PermanentError(f"Square POST {path}: {said}")
    status = result.get("status_code")
    if not isinstance(status, int) or isinstance(status, bool):
        status = None
    detail = f"a sample {TEST_EVENT_TYPE} event"
    if result.get("id"):
        detail += f" (test {result['id']})"
    return TestResult(reached=status is not None and 200 <= status < 300, status=status,
                      detail=detail)
