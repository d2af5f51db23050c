"""Setting Mindbody up: the application's webhook subscription, a business's activation
link, and the first call that tries a site.

Mindbody facts this module relies on, and where they are documented:

- Going live: Mindbody approves the developer account, then each business activates the
  link between the developer account and its site. ``GET /public/v6/site/activationcode``
  (``Api-Key`` and ``SiteId`` only) answers ``{"ActivationCode", "ActivationLink"}``, the
  link leading the business owner to approve the integration.
  https://developers.mindbodyonline.com/WebhooksDocumentation (Getting Started),
  https://github.com/api-evangelist/mindbody/blob/main/json-schema/public-api-v6-get-activation-code-response-schema.json
- Subscriptions belong to the developer account (one for Rapport's application, for every
  activated site): ``POST /api/v1/subscriptions`` with ``eventIds``,
  ``eventSchemaVersion`` (1 is the only value), ``referenceId`` and ``webhookUrl``
  creates one in ``PendingActivation`` and returns its ``subscriptionId`` and
  ``messageSignatureKey`` — "the only endpoint that returns it"; ``PATCH
  /api/v1/subscriptions/{id}`` with ``status: "Active"`` starts deliveries; ``DELETE``
  deactivates one. Other statuses: DeactivatedByUser, DeactivatedByAdmin,
  DeactivatedTooManyFailedMessageDeliveryAttempts, DeactivatedByEventDeactivation.
  https://developers.mindbodyonline.com/WebhooksDocumentation#subscriptions and the
  specification generated from Mindbody's SDK:
  https://github.com/api-evangelist/mindbody/blob/main/openapi/_original/mindbody-webhooks-api-openapi-original.yml

Not confirmed, and handled defensively:

- Whether the Webhooks API wraps its answers (the SDK models a ``PushApiResult`` with
  ``value``): both the bare subscription and one inside ``value`` are read.
- Integrators report that Mindbody sends a ``HEAD`` request to ``webhookUrl`` when the
  subscription is created and needs a 2xx back; the seam's receiver must answer it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from handlers.base import AdapterError, PermanentError, Subscription, TransientError
from handlers.mindbody.api import forget_token, public_call, segment, user_token, webhooks_call
from handlers.mindbody.webhooks import EVENT_TYPES

REFERENCE_ID = "rapport"
ACTIVATE_ATTEMPTS = 2


def activation(credentials: Mapping[str, Any]) -> dict[str, str]:
    """The site's activation code and link (one call, before or after activation)."""
    answer = public_call(credentials, "GET", "site/activationcode", staff=False)
    return {"code": str(answer.get("ActivationCode") or ""),
            "link": str(answer.get("ActivationLink") or "")}


def try_site(credentials: Mapping[str, Any]) -> None:
    """Issue a user token for the site: one call, and the one an unactivated site or a
    wrong login fails on. The token is kept for the calls that follow in this process."""
    forget_token(credentials)
    user_token(credentials, fresh=True)


def subscribe(settings: Mapping[str, Any], url: str) -> Subscription:
    """Create the application's subscription and activate it.

    The signature key exists only in the creation's answer, so a subscription that cannot
    be activated is deactivated again and the error raised: the next attempt starts over
    rather than leave a pending subscription whose key nobody kept.
    """
    body = {"eventIds": list(EVENT_TYPES), "eventSchemaVersion": 1,
            "referenceId": REFERENCE_ID, "webhookUrl": url}
    created = _subscription(webhooks_call(settings, "POST", "subscriptions", body=body))
    subscription_id, key = created.get("subscriptionId"), created.get("messageSignatureKey")
    if not subscription_id or not key:
        raise PermanentError("Mindbody created no subscription id or signature key")
    path = f"subscriptions/{segment(subscription_id)}"
    failure: AdapterError | None = None
    for _attempt in range(ACTIVATE_ATTEMPTS):
        try:
            activated = _subscription(webhooks_call(settings, "PATCH", path,
                                                    body={"status": "Active"}))
        except TransientError as error:
            failure = error
            continue
        except AdapterError as error:
            failure = error
            break
        if activated.get("status") in (None, "Active"):
            return Subscription(subscription_id=str(subscription_id), signature_key=str(key),
                                notification_url=str(created.get("webhookUrl") or url))
        failure = PermanentError(f"Mindbody left the subscription {activated.get('status')}: "
                                 f"{activated.get('statusChangeMessage') or 'no reason given'}")
        break
    # A pending subscription receives nothing; the error below is what matters.
    with contextlib.suppress(AdapterError):
        webhooks_call(settings, "DELETE", path)
    raise failure or PermanentError("Mindbody did not activate the subscription")


def subscriptions(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The application's subscriptions, as Mindbody lists them (never with their keys)."""
    answer = webhooks_call(settings, "GET", "subscriptions")
    items = answer.get("items")
    if items is None and isinstance(answer.get("value"), dict):
        items = answer["value"].get("items")
    return [item for item in items or () if isinstance(item, dict)]


def _subscription(answer: Mapping[str, Any]) -> dict[str, Any]:
    inner = answer.get("value")
    return dict(inner) if isinstance(inner, dict) else dict(answer)
