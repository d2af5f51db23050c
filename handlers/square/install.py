"""Install steps for a Square seller: Rapport's customer attribute definition and the
application's webhook subscription.

Square facts this module relies on, and where they are documented:

- A definition's key "must be unique per application, seller, and resource type" (spec,
  ``CustomAttributeDefinition.key``), and RetrieveCustomerCustomAttributeDefinition,
  ``GET /v2/customers/custom-attribute-definitions/{key}`` (CUSTOMERS_READ), reads it
  back: so the definition is read before it is created.
  https://developer.squareup.com/reference/square/customercustomattributes-api/retrieve-customer-custom-attribute-definition

Not confirmed, and handled defensively:

- Square's answer to a duplicate custom attribute definition key and to a retrieve of an
  undefined key (neither is in the spec or the guides; the definition is read back after
  any refused create, and is taken to exist when it is there).
- Where exactly the Square Dashboard shows a read-only custom attribute.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from handlers.base import ConflictError, MissingPermission, PermanentError
from handlers.square.api import SQUARE_VERSION, _call, _key
from handlers.square.webhooks import APPLICATION_EVENT_TYPES

ATTRIBUTE_KEY = "rapport-alliance"
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
