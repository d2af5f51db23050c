"""Square Appointments adapter: webhooks in, customer notes and attributes out.

Square never says "completed": a booking is ACCEPTED, then its time passes. Rapport
therefore derives completion from the end time (``COMPLETION = "end_time"``) and, before
acting, re-reads the booking with :func:`fetch_appointment`, which reports ``completed``
only for a booking that is still ACCEPTED once its last segment has ended.

What Rapport writes, per client:

- its own block in the customer profile's ``note`` (the therapist's text around it is kept
  byte for byte; the update carries the customer ``version`` and is re-read and retried on
  a version conflict);
- a read-only customer custom attribute ``rapport-alliance`` with a one-line summary;
- when the client books again while talking points are open, its block in the new
  booking's ``seller_note`` (which customers never see).

Square facts this module relies on, and where they are documented:

- Signature: header ``x-square-hmacsha256-signature`` = base64(HMAC-SHA256(signature key,
  notification URL + raw body)); the URL must be the subscription's, byte for byte; no
  timestamp, so no replay window.
  https://developer.squareup.com/docs/webhooks/step3validate,
  https://developer.squareup.com/docs/webhooks-api/validate-notifications, and the official
  SDK's ``square.utils.webhooks_helper.verify_signature`` (squareup 46.0.0.20260916).
- Delivery: answer 2xx within 10 s; failed deliveries are retried (the page says up to
  72 h; an older copy says 24 h), so duplicates are deduplicated on ``event_id``.
  https://developer.squareup.com/docs/webhooks/troubleshooting
- Subscriptions belong to the application, not to a seller: the Webhook Subscriptions API
  refuses OAuth access tokens and needs the application's personal access token, and every
  seller who authorizes the application receives its subscriptions' events (told apart by
  ``merchant_id``).
  https://developer.squareup.com/docs/webhooks/webhook-subscriptions-api,
  https://developer.squareup.com/forums/t/can-we-use-oauth-to-catch-webhook/242
- Booking statuses PENDING, ACCEPTED, CANCELLED_BY_CUSTOMER, CANCELLED_BY_SELLER, DECLINED,
  NO_SHOW; ``booking.updated`` is also published on cancellation; seller-level events need
  APPOINTMENTS_READ and APPOINTMENTS_ALL_READ.
  https://developer.squareup.com/reference/square/enums/BookingStatus and the spec's
  ``BookingCreatedEvent`` / ``BookingUpdatedEvent``.
- A segment's ``intermission_minutes`` is the time between the end of that segment and the
  start of the next; the end is start + all durations + the intermissions between segments.
  https://developer.squareup.com/reference/square/objects/AppointmentSegment
- ``version`` gives optimistic concurrency on customers and bookings; a stale version is
  answered with a "version mismatch" error and the object must be read again.
  https://developer.squareup.com/docs/working-with-apis/optimistic-concurrency,
  https://developer.squareup.com/reference/square/customers-api/update-customer
- UpdateBooking at seller level needs APPOINTMENTS_WRITE and APPOINTMENTS_ALL_WRITE and a
  seller on Appointments Plus or Premium; ``Booking.seller_note`` is at most 4096 characters
  and hidden from customers (spec, UpdateBooking and Booking).
- Idempotency keys: the same key with the same request returns the first response without
  applying it again; the same key with a different request is an error.
  https://developer.squareup.com/docs/working-with-apis/idempotency
- Customer custom attributes: a definition (key, name, description, String schema on the
  Square CDN, visibility) is created once per seller, then values are upserted per
  customer; ``VISIBILITY_READ_ONLY`` lets the seller and Square products read the value
  while only Rapport writes it; idempotency keys are at most 45 characters.
  https://developer.squareup.com/docs/customer-custom-attributes-api/custom-attribute-definitions,
  https://developer.squareup.com/docs/customer-custom-attributes-api/custom-attributes
- A definition's key "must be unique per application, seller, and resource type" (spec,
  ``CustomAttributeDefinition.key``), and RetrieveCustomerCustomAttributeDefinition,
  ``GET /v2/customers/custom-attribute-definitions/{key}`` (CUSTOMERS_READ), reads it
  back: so the definition is read before it is created.
  https://developer.squareup.com/reference/square/customercustomattributes-api/retrieve-customer-custom-attribute-definition
- ``INSUFFICIENT_SCOPES`` (category ``AUTHENTICATION_ERROR``): "The provided access token
  does not have permission to execute the requested action" — a scope the seller did not
  grant, told apart from other 403s as :class:`MissingPermission` (spec, ``ErrorCode``).
- OAuth: ``/oauth2/authorize?client_id=…&scope=A+B&session=false&state=…`` on
  connect.squareup.com or connect.squareupsandbox.com; ``POST /oauth2/token`` with the
  code-flow secret; access tokens last 30 days, the code-flow refresh token never expires
  and comes back unchanged; Square recommends refreshing every 7 days or less.
  https://developer.squareup.com/reference/square/o-auth/authorize,
  https://developer.squareup.com/docs/oauth-api/create-urls-for-square-authorization,
  https://developer.squareup.com/docs/oauth-api/refresh-revoke-limit-scope,
  https://developer.squareup.com/reference/square/objects/ObtainTokenResponse
- Rate limits are not published; a throttled call is answered 429 RATE_LIMITED and should be
  retried with exponential backoff.
  https://developer.squareup.com/docs/general-troubleshooting,
  https://developer.squareup.com/forums/t/getting-rate-limited-error-on-a-dev-server/7842
- Customers have no language or locale field; Square keeps ``language_code`` on the
  Merchant and the Location only, so :func:`fetch_client` returns ``locale=None`` and the
  clinic's own language applies.
  https://developer.squareup.com/docs/build-basics/language-preferences

Not confirmed, and handled defensively:

- The HTTP status of a version mismatch on customers and bookings. ``VERSION_MISMATCH``
  appears in Square's Payments documentation but not in the spec's ``ErrorCode`` enum, which
  has ``CONFLICT``; any 409 and either code is treated as a conflict.
- Whether a 429 carries ``Retry-After``; it is honoured when present.
- The longest ``Customer.note`` (the spec states no limit) and the longest String custom
  attribute value (Rapport keeps the summary under 255 characters).
- Square's answer to a duplicate custom attribute definition key and to a retrieve of an
  undefined key (neither is in the spec or the guides; the definition is read back after
  any refused create, and is taken to exist when it is there), and to a revoked refresh
  token at ``/oauth2/token`` (taken to be 401).
- Where exactly the Square Dashboard shows a read-only custom attribute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import requests
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from handlers.base import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    AppointmentEvent,
    AuthError,
    Client,
    ConflictError,
    IgnoredEvent,
    InboundRequest,
    MissingPermission,
    Note,
    PayloadError,
    PermanentError,
    Person,
    SignatureError,
    TransientError,
    WriteBackResult,
    WriteBackTarget,
    replace_block,
    retry_after_seconds,
)

PLATFORM = "square"
COMPLETION = "end_time"
# The same rendered note goes to the customer profile (no stated limit) and to the next
# booking's seller_note (4096 characters, shared with the therapist's own text): half of
# it leaves the therapist room on the booking.
NOTE_LIMIT = 2000
SELLER_NOTE_LIMIT = 4096

SQUARE_VERSION = "2025-08-20"
BASE_URLS = {
    "production": "https://connect.squareup.com",
    "sandbox": "https://connect.squareupsandbox.com",
}
SIGNATURE_HEADER = "x-square-hmacsha256-signature"
EVENT_TYPES = ("booking.created", "booking.updated")
SCOPES = (
    "APPOINTMENTS_READ",
    "APPOINTMENTS_ALL_READ",
    # seller_note on the next booking is an UpdateBooking at seller level
    "APPOINTMENTS_WRITE",
    "APPOINTMENTS_ALL_WRITE",
    "CUSTOMERS_READ",
    "CUSTOMERS_WRITE",
)
ATTRIBUTE_KEY = "rapport-alliance"
STRING_SCHEMA = (
    "https://developer-production-s.squarecdn.com/schemas/v1/common.json#squareup.common.String"
)
ATTRIBUTE_VALUE_LIMIT = 255
# Square recommends refreshing every 7 days or less; access tokens last 30 days.
TOKEN_LIFETIME = timedelta(days=30)
REFRESH_EVERY = timedelta(days=7)
DEFAULT_TIMEOUT = (5.0, 20.0)
CONFLICT_ATTEMPTS = 4
CONFLICT_CODES = frozenset({"VERSION_MISMATCH", "CONFLICT"})

STATUSES = {
    # A request the seller has not accepted yet: tracked like a booking so a later
    # acceptance or decline finds it, but fetch_appointment never calls it completed.
    "PENDING": BOOKED,
    "ACCEPTED": BOOKED,
    "CANCELLED_BY_CUSTOMER": CANCELLED,
    "CANCELLED_BY_SELLER": CANCELLED,
    "DECLINED": CANCELLED,
    "NO_SHOW": NO_SHOW,
}
# Bookings that can still carry talking points for the visit ahead.
ACTIVE_STATUSES = frozenset({"PENDING", "ACCEPTED"})


# --- webhooks in ---------------------------------------------------------------------


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


def parse(request: InboundRequest) -> list[AppointmentEvent]:
    payload = _json_object(request.body)
    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("type", "missing or not a string")
    handler = EVENT_HANDLERS.get(event_type)
    if handler is None:
        raise IgnoredEvent(event_type)
    return handler(payload)


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _Segment(_Lenient):
    duration_minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    intermission_minutes = fields.Integer(strict=True, allow_none=True, load_default=None)
    team_member_id = fields.String(required=True, validate=validate.Length(min=1))
    service_variation_id = fields.String(allow_none=True, load_default=None)


class _Booking(_Lenient):
    id = fields.String(required=True, validate=validate.Length(min=1))
    version = fields.Integer(required=True, strict=True)
    status = fields.String(required=True, validate=validate.OneOf(tuple(STATUSES)))
    start_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    updated_at = fields.AwareDateTime(allow_none=True, load_default=None, default_timezone=UTC)
    customer_id = fields.String(required=True, validate=validate.Length(min=1))
    location_id = fields.String(allow_none=True, load_default=None)
    seller_note = fields.String(allow_none=True, load_default=None)
    appointment_segments = fields.List(
        fields.Nested(_Segment), required=True, validate=validate.Length(min=1)
    )


class _EventObject(_Lenient):
    booking = fields.Nested(_Booking, required=True)


class _EventData(_Lenient):
    object = fields.Nested(_EventObject, required=True)


class _BookingEvent(_Lenient):
    event_id = fields.String(required=True, validate=validate.Length(min=1))
    type = fields.String(required=True)
    location_id = fields.String(allow_none=True, load_default=None)
    created_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    data = fields.Nested(_EventData, required=True)


def _booking_event(payload: Mapping[str, Any]) -> list[AppointmentEvent]:
    event = _load(_BookingEvent(), payload)
    booking = event["data"]["object"]["booking"]
    return [
        _appointment(
            booking,
            event_id=event["event_id"],
            occurred_at=event["created_at"],
            location_id=event["location_id"],
        )
    ]


EVENT_HANDLERS = {event_type: _booking_event for event_type in EVENT_TYPES}


def _appointment(
    booking: Mapping[str, Any],
    *,
    event_id: str,
    occurred_at: datetime,
    location_id: str | None = None,
    now: datetime | None = None,
) -> AppointmentEvent:
    segments = booking["appointment_segments"]
    start = booking["start_at"].astimezone(UTC)
    minutes = sum(segment["duration_minutes"] for segment in segments)
    minutes += sum(segment["intermission_minutes"] or 0 for segment in segments[:-1])
    end = start + timedelta(minutes=minutes)
    status = STATUSES[booking["status"]]
    if now is not None and booking["status"] == "ACCEPTED" and end <= now:
        status = COMPLETED
    return AppointmentEvent(
        platform=PLATFORM,
        event_id=event_id,
        occurred_at=occurred_at.astimezone(UTC),
        appointment_id=booking["id"],
        status=status,
        client=Client(id=booking["customer_id"]),
        start=start,
        end=end,
        # The webhook names the service only by catalog id; its name needs ITEMS_READ.
        service=None,
        therapist=Person(id=segments[0]["team_member_id"]),
        version=booking["version"],
        location_id=booking["location_id"] or location_id,
    )


# --- reading from Square -------------------------------------------------------------


def fetch_appointment(
    credentials: Mapping[str, Any], booking_id: str, *, now: datetime | None = None
) -> AppointmentEvent:
    """The booking as Square has it now; ``completed`` once an ACCEPTED booking has ended."""
    now = now or datetime.now(UTC)
    payload = _call(credentials, "GET", f"/v2/bookings/{_segment(booking_id)}")
    try:
        booking = _load(_Booking(), payload.get("booking"), prefix="booking")
    except PayloadError as error:
        raise PermanentError(f"Square's booking {booking_id} is not usable: {error}") from None
    return _appointment(
        booking,
        event_id=f"square-fetch:{booking['id']}:{booking['version']}",
        occurred_at=booking["updated_at"] or now,
        now=now,
    )


def fetch_client(credentials: Mapping[str, Any], customer_id: str) -> Client:
    customer = _customer(credentials, customer_id)
    return Client(
        id=customer.get("id") or customer_id,
        email=customer.get("email_address") or None,
        first_name=customer.get("given_name") or None,
        locale=None,
        unsubscribed=bool((customer.get("preferences") or {}).get("email_unsubscribed")),
    )


# --- writing back --------------------------------------------------------------------


def write_back(
    credentials: Mapping[str, Any],
    target: WriteBackTarget,
    note: Note,
    *,
    delivery_id: str | None = None,
    occurred_at: datetime | None = None,
) -> WriteBackResult:
    """Replace Rapport's block in the customer note, then upsert the summary attribute.

    ``delivery_id`` and ``occurred_at`` are part of the adapter contract; Square needs
    neither, its writes being idempotent by content (idempotency keys and block replace).
    """
    note_detail = _write_customer_note(credentials, target.client_id, note)
    attribute = _upsert_attribute(credentials, target, note)
    return WriteBackResult(
        target="square.customer",
        detail={
            "customer_id": target.client_id,
            **note_detail,
            "attribute_key": ATTRIBUTE_KEY,
            "attribute_value": attribute.get("value"),
            "attribute_version": attribute.get("version"),
        },
    )


def write_seller_note(credentials: Mapping[str, Any], booking_id: str, note: Note) -> bool:
    """Put Rapport's block in the booking's seller note.

    True when the booking carries the block afterwards (written now or already there);
    False when the booking is no longer active or the therapist's own seller note leaves
    too little room (their text is never shortened).
    """
    path = f"/v2/bookings/{_segment(booking_id)}"
    for _attempt in range(CONFLICT_ATTEMPTS):
        booking = _call(credentials, "GET", path).get("booking") or {}
        if booking.get("status") not in ACTIVE_STATUSES:
            return False
        existing = booking.get("seller_note") or ""
        updated = _fit_seller_note(existing, note)
        if updated is None:
            return False
        if updated == existing:
            return True
        version = booking.get("version")
        body = {
            "idempotency_key": _key("rapport-sn-", booking_id, version, updated, size=40),
            "booking": {"seller_note": updated, "version": version},
        }
        try:
            _call(credentials, "PUT", path, body=body)
        except ConflictError:
            continue
        return True
    raise ConflictError(f"booking {booking_id} kept changing; seller note not written")


def _write_customer_note(
    credentials: Mapping[str, Any], customer_id: str, note: Note
) -> dict[str, Any]:
    path = f"/v2/customers/{_segment(customer_id)}"
    for _attempt in range(CONFLICT_ATTEMPTS):
        customer = _customer(credentials, customer_id)
        existing = customer.get("note") or ""
        updated = replace_block(existing, note)
        if updated == existing:
            return {"note_updated": False, "customer_version": customer.get("version")}
        body = {"note": updated, "version": customer.get("version")}
        try:
            saved = _call(credentials, "PUT", path, body=body).get("customer") or {}
        except ConflictError:
            # The therapist (or another app) saved the profile in between: start again
            # from their version so their text survives.
            continue
        return {"note_updated": True, "customer_version": saved.get("version")}
    raise ConflictError(f"customer {customer_id} kept changing; note not written")


def _fit_seller_note(existing: str, note: Note) -> str | None:
    """``existing`` with Rapport's block in the room the therapist's text leaves.

    A block too long for that room is rendered again, shorter, by the note's own
    renderer (the comment and subscale lines go before the talking points; no word is
    cut and the markers keep their lines); when even its smallest form does not fit, None.
    """
    updated = replace_block(existing, note)
    if len(updated) <= SELLER_NOTE_LIMIT:
        return updated
    # replace_block keeps everything around the block as it is, whatever the block.
    room = SELLER_NOTE_LIMIT - (len(updated) - len(note.text))
    fitted = note.fitted(room)
    return None if fitted is None else replace_block(existing, fitted)


def attribute_value(note: Note) -> str:
    """The one-line summary stored in the custom attribute.

    ``note.summary["line"]`` is used as is; otherwise the line is built from the summary
    every write-back carries (``scores.overall`` on the 0–100 scale, ``trend.sparkline``)
    and the talking points.
    """
    line = note.summary.get("line")
    if not (isinstance(line, str) and line.strip()):
        head = "Alliance"
        overall = (note.summary.get("scores") or {}).get("overall")
        if overall is not None:
            head += f" {_number(overall)}/100"
        sparkline = (note.summary.get("trend") or {}).get("sparkline")
        if sparkline:
            head += f" {sparkline}"
        count = len(note.talking_points)
        line = f"{head} — {count} talking point{'' if count == 1 else 's'}"
    return line.strip()[:ATTRIBUTE_VALUE_LIMIT]


def _upsert_attribute(
    credentials: Mapping[str, Any], target: WriteBackTarget, note: Note
) -> dict[str, Any]:
    value = attribute_value(note)
    path = f"/v2/customers/{_segment(target.client_id)}/custom-attributes/{ATTRIBUTE_KEY}"
    # The appointment is part of the key: the same summary after a later visit is a new
    # write, while a retried job for the same visit is recognised by Square.
    body = {
        "idempotency_key": _key("rapport-ca-", target.client_id, target.appointment_id, value),
        "custom_attribute": {"value": value},
    }
    try:
        answer = _call(credentials, "POST", path, body=body)
    except _NotFound:
        # Clinics connected without the install step have no definition yet.
        ensure_attribute_definition(credentials)
        answer = _call(credentials, "POST", path, body=body)
    return answer.get("custom_attribute") or {}


# --- install steps -------------------------------------------------------------------


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
        "idempotency_key": _key("rapport-sub-", notification_url, *EVENT_TYPES),
        "subscription": {
            "name": "Rapport",
            "event_types": list(EVENT_TYPES),
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
        "event_types": subscription.get("event_types", list(EVENT_TYPES)),
    }


# --- OAuth ---------------------------------------------------------------------------


def authorize_url(
    *,
    application_id: str,
    state: str,
    environment: str = "production",
    redirect_uri: str | None = None,
    base_url: str | None = None,
) -> str:
    """The "Connect Square" link a clinic admin opens to grant Rapport its scopes."""
    params = {
        "client_id": application_id,
        "scope": " ".join(SCOPES),
        # Makes the admin sign in, so the clinic's own Square account is the one connected.
        "session": "false",
        "state": state,
    }
    if redirect_uri:
        params["redirect_uri"] = redirect_uri
    root = _base_url({"base_url": base_url, "environment": environment})
    return f"{root}/oauth2/authorize?{urlencode(params)}"


def exchange_code(
    *,
    application_id: str,
    application_secret: str,
    code: str,
    environment: str = "production",
    base_url: str | None = None,
    redirect_uri: str | None = None,
) -> dict[str, Any]:
    body = {
        "client_id": application_id,
        "client_secret": application_secret,
        "grant_type": "authorization_code",
        "code": code,
    }
    if redirect_uri:
        body["redirect_uri"] = redirect_uri
    where = {"base_url": base_url, "environment": environment}
    return _tokens(_call(where, "POST", "/oauth2/token", body=body, auth=False))


def refresh_access_token(
    credentials: Mapping[str, Any], *, application_id: str, application_secret: str
) -> dict[str, Any]:
    refresh_token = credentials.get("refresh_token")
    if not refresh_token:
        raise AuthError("no Square refresh token is stored: the clinic must reconnect")
    body = {
        "client_id": application_id,
        "client_secret": application_secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    tokens = _tokens(_call(credentials, "POST", "/oauth2/token", body=body, auth=False))
    tokens["refresh_token"] = tokens.get("refresh_token") or refresh_token
    return tokens


def needs_refresh(credentials: Mapping[str, Any], now: datetime) -> bool:
    """True once the access token is a week old (Square: refresh every 7 days or less).

    Personal access tokens (manual set-up) carry no ``expires_at`` and never need it.
    """
    expires_at = credentials.get("expires_at")
    if not expires_at:
        return False
    if isinstance(expires_at, datetime):
        expires = expires_at
    else:
        try:
            expires = datetime.fromisoformat(str(expires_at).replace("Z", "+00:00"))
        except ValueError:
            return True
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return now >= expires - (TOKEN_LIFETIME - REFRESH_EVERY)


def _tokens(answer: Mapping[str, Any]) -> dict[str, Any]:
    if not answer.get("access_token"):
        raise PermanentError("Square's token answer has no access_token")
    fields_ = ("access_token", "refresh_token", "expires_at", "merchant_id", "token_type")
    return {name: answer.get(name) for name in fields_}


# --- HTTP ----------------------------------------------------------------------------


def _customer(credentials: Mapping[str, Any], customer_id: str) -> dict[str, Any]:
    payload = _call(credentials, "GET", f"/v2/customers/{_segment(customer_id)}")
    customer = payload.get("customer")
    if not isinstance(customer, dict):
        raise PermanentError(f"Square returned no customer for {customer_id}")
    return customer


def _call(
    credentials: Mapping[str, Any],
    method: str,
    path: str,
    *,
    body: Mapping[str, Any] | None = None,
    auth: bool = True,
) -> dict[str, Any]:
    headers = {"Square-Version": SQUARE_VERSION, "Accept": "application/json"}
    if auth:
        token = credentials.get("access_token")
        if not token:
            raise AuthError("no Square access token is configured for this clinic")
        headers["Authorization"] = f"Bearer {token}"
    url = _base_url(credentials) + path
    try:
        response = requests.request(
            method, url, json=body, headers=headers, timeout=_timeout(credentials)
        )
    except (requests.Timeout, requests.ConnectionError) as error:
        raise TransientError(f"Square {method} {path}: {error.__class__.__name__}") from error
    except requests.RequestException as error:
        raise PermanentError(f"Square {method} {path}: {error}") from error
    return _answer(response, method, path)


def _answer(response: requests.Response, method: str, path: str) -> dict[str, Any]:
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if 200 <= status < 300:
        if not isinstance(payload, dict):
            raise TransientError(f"Square {method} {path}: {status} without a JSON object")
        return payload
    errors = payload.get("errors") if isinstance(payload, dict) else None
    errors = [error for error in errors or () if isinstance(error, dict)]
    codes = {str(error.get("code")) for error in errors}
    first = errors[0] if errors else {}
    detail = first.get("detail") or response.reason or "no detail"
    where = f" (field {first['field']})" if first.get("field") else ""
    message = f"Square {method} {path}: {status} {first.get('code', '')} {detail}{where}"
    if status == 401:
        raise AuthError(message)
    if status == 429 or status == 408 or status >= 500:
        raise TransientError(message, retry_after_seconds(response.headers.get("Retry-After")))
    if status == 409 or codes & CONFLICT_CODES:
        raise ConflictError(message)
    if status == 404:
        raise _NotFound(message)
    if status == 403 and "INSUFFICIENT_SCOPES" in codes:
        raise MissingPermission(message)
    raise PermanentError(message)


class _NotFound(PermanentError):
    pass


def _base_url(credentials: Mapping[str, Any]) -> str:
    override = credentials.get("base_url")
    if override:
        return str(override).rstrip("/")
    environment = credentials.get("environment") or "production"
    try:
        return BASE_URLS[environment]
    except KeyError:
        raise PermanentError(
            f"unknown Square environment {environment!r}; use 'sandbox' or 'production'"
        ) from None


def _timeout(credentials: Mapping[str, Any]) -> float | tuple[float, float]:
    value = credentials.get("timeout")
    return float(value) if value else DEFAULT_TIMEOUT


# --- small helpers -------------------------------------------------------------------


def _signature(body: bytes, key: str, notification_url: str) -> str:
    digest = hmac.new(
        key.encode("utf-8"), notification_url.encode("utf-8") + body, hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise PayloadError("body", f"not valid JSON ({error})") from None
    if not isinstance(payload, dict):
        raise PayloadError("body", "expected a JSON object")
    return payload


def _load(schema: Schema, data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise PayloadError(prefix or "body", "expected an object")
    try:
        return schema.load(data)
    except ValidationError as error:
        path, message = _first_error(error.messages)
        raise PayloadError(".".join(filter(None, [prefix, path])), message) from None


def _first_error(messages: Any) -> tuple[str, str]:
    if isinstance(messages, Mapping):
        name, inner = next(iter(messages.items()))
        path, message = _first_error(inner)
        return ".".join(filter(None, [str(name), path])), message
    if isinstance(messages, list) and messages:
        return "", str(messages[0])
    return "", str(messages)


def _segment(value: str) -> str:
    # Ids come from webhooks; quoting keeps one from reaching another path.
    return quote(str(value), safe="")


def _key(prefix: str, *parts: Any, size: int = 32) -> str:
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8"))
    return prefix + digest.hexdigest()[:size]


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
