"""Square's webhook deliveries: the signature, the delivery id, the seller an event
belongs to, and booking events read as :class:`AppointmentEvent`.

Square facts this module relies on, and where they are documented:

- Signature: header ``x-square-hmacsha256-signature`` = base64(HMAC-SHA256(signature key,
  notification URL + raw body)); the URL must be the subscription's, byte for byte; no
  timestamp, so no replay window.
  https://developer.squareup.com/docs/webhooks/step3validate,
  https://developer.squareup.com/docs/webhooks-api/validate-notifications, and the official
  SDK's ``square.utils.webhooks_helper.verify_signature`` (squareup 46.0.0.20260916).
- ``oauth.authorization.revoked``: published to the application's subscriptions when a
  seller (or the application, or Square) revokes every token granted to the application;
  ``merchant_id`` names the seller.
  https://developer.squareup.com/reference/square/webhooks/oauth.authorization.revoked,
  and the specification's ``OauthAuthorizationRevokedEvent``.
- Delivery: answer 2xx within 10 s; failed deliveries are retried (the page says up to
  72 h; an older copy says 24 h), so duplicates are deduplicated on ``event_id``.
  https://developer.squareup.com/docs/webhooks/troubleshooting
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import fields, validate

from handlers.base import (
    AppointmentEvent,
    IgnoredEvent,
    InboundRequest,
    Instant,
    PayloadError,
    SignatureError,
    in_utc,
    json_object,
    parse_instant,
)
from handlers.square.bookings import _appointment, _Booking, _Lenient, _load, unusable

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
EVENT_TYPES = ("booking.created", "booking.updated")
REVOKED = "oauth.authorization.revoked"
# What Rapport's application-wide subscription asks for: bookings, and sellers who
# disconnect Rapport, so their clinic shows "needs reconnecting" at once.
APPLICATION_EVENT_TYPES = (*EVENT_TYPES, REVOKED)


def sign(body: bytes, *, signature_key: str, notification_url: str) -> dict[str, str]:
    """The headers Square sends with ``body`` delivered to ``notification_url``."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: _signature(body, signature_key, notification_url),
    }


def verify(request: InboundRequest, credentials: Mapping[str, Any]) -> None:
    """Raise :class:`SignatureError` unless a configured key signed this exact request.

    The signed URL is the one stored at subscription time, never the URL the request
    arrived on: proxies rewrite hosts and schemes, and Square signs the registered one.
    """
    keys = credentials.get("signature_keys") or ()
    if isinstance(keys, str):
        keys = (keys,)
    keys = [key for key in keys if key]
    url = credentials.get("notification_url")
    if not keys:
        raise SignatureError("no Square signature key is configured for this clinic")
    if not url:
        raise SignatureError("no Square notification URL is configured for this clinic")
    received = (request.header(SIGNATURE_HEADER) or "").strip()
    if not received:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    received_bytes = received.encode("utf-8")
    # Every key is compared, so the time taken does not tell which one matched.
    matched = False
    for key in keys:
        expected = _signature(request.body, key, url).encode("ascii")
        matched |= hmac.compare_digest(expected, received_bytes)
    if not matched:
        raise SignatureError("Square signature does not match (key or notification URL differ)")


def delivery_id(request: InboundRequest) -> str:
    """Square's ``event_id``, stable across redeliveries of one event."""
    event_id = _json_object(request.body).get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise PayloadError("event_id", "missing or not a string")
    return event_id


def merchant_id(request: InboundRequest) -> str | None:
    """The seller an event belongs to: an application-level subscription carries every
    connected seller's events to one URL, so this is what routes them to a clinic."""
    value = _json_object(request.body).get("merchant_id")
    return value if isinstance(value, str) and value else None


def revocation(request: InboundRequest) -> tuple[str, datetime | None] | None:
    """For ``oauth.authorization.revoked``: the seller who revoked Rapport's access and
    when (``revoked_at``, else the event's ``created_at``, None if neither reads as a
    time); None for any other event."""
    payload = _json_object(request.body)
    if payload.get("type") != REVOKED:
        return None
    merchant = payload.get("merchant_id")
    if not isinstance(merchant, str) or not merchant:
        raise PayloadError("merchant_id", "missing or not a string")
    revoked = _member(_member(_member(payload, "data"), "object"), "revocation")
    when = _instant(revoked.get("revoked_at")) or _instant(payload.get("created_at"))
    return merchant, when


def _member(value: Any, name: str) -> dict[str, Any]:
    """``value[name]`` when both are objects, else an empty one: a revocation is acted on
    by its merchant id, whatever else its body holds."""
    inner = value.get(name) if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else {}


def _instant(value: Any) -> datetime | None:
    """A time Rapport can use, else None."""
    when = parse_instant(value) if isinstance(value, str) else None
    try:
        return in_utc(when) if when is not None else None
    except ValueError:
        return None


def parse(request: InboundRequest) -> list[AppointmentEvent]:
    payload = _json_object(request.body)
    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("type", "missing or not a string")
    handler = EVENT_HANDLERS.get(event_type)
    if handler is None:
        raise IgnoredEvent(event_type)
    return handler(payload)


class _EventObject(_Lenient):
    booking = fields.Nested(_Booking, required=True)


class _EventData(_Lenient):
    object = fields.Nested(_EventObject, required=True)


class _BookingEvent(_Lenient):
    event_id = fields.String(required=True, validate=validate.Length(min=1))
    type = fields.String(required=True)
    location_id = fields.String(allow_none=True, load_default=None)
    created_at = Instant(required=True, default_timezone=UTC)
    data = fields.Nested(_EventData, required=True)


def _booking_event(payload: Mapping[str, Any]) -> list[AppointmentEvent]:
    event = _load(_BookingEvent(), payload)
    booking = event["data"]["object"]["booking"]
    if reason := unusable(booking):
        raise IgnoredEvent(event["type"], reason)
    return [
        _appointment(
            booking,
            event_id=event["event_id"],
            occurred_at=event["created_at"],
            location_id=event["location_id"],
        )
    ]


EVENT_HANDLERS = {event_type: _booking_event for event_type in EVENT_TYPES}


def _signature(body: bytes, key: str, notification_url: str) -> str:
    digest = hmac.new(
        key.encode("utf-8"), notification_url.encode("utf-8") + body, hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _json_object(body: bytes) -> dict[str, Any]:
    return json_object(body)
