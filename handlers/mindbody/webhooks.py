"""Mindbody's webhook deliveries: the signature, the delivery id, the site an event
belongs to, and appointment events read as :class:`AppointmentEvent`.

Mindbody facts this module relies on, and where they are documented:

- Signature: every event carries ``X-Mindbody-Signature: sha256=<base64(HMAC-SHA256(
  messageSignatureKey, raw UTF-8 body))>``; no timestamp is signed, so there is no
  replay window (duplicates are caught by ``messageId`` instead). The key is the
  ``messageSignatureKey`` returned once, when the subscription is created.
  https://developers.mindbodyonline.com/WebhooksDocumentation#x-mindbody-signature-header,
  cross-checked against integrations that verify it (a ``sha256=`` prefix and base64:
  github.com/christophertino/mindbody-brivo README; a C# ``WebhookAuthorizeAttribute``).
- The envelope: ``messageId`` (unique per message, the same on every retry),
  ``eventId`` (the event type, e.g. ``appointmentBooking.updated``),
  ``eventSchemaVersion``, ``eventInstanceOriginationDateTime`` and ``eventData``; for
  appointment bookings ``eventData`` holds ``siteId``, ``appointmentId``, ``status``,
  ``isConfirmed``, ``hasArrived``, ``locationId``, ``clientId``, ``clientFirstName``,
  ``clientLastName``, ``clientEmail``, ``clientPhone``, ``staffId``, ``staffFirstName``,
  ``staffLastName``, ``startDateTime``, ``endDateTime``, ``durationMinutes``,
  ``sessionTypeId``, ``appointmentName``, ``notes`` …
  https://developers.mindbodyonline.com/WebhooksDocumentation (Appointment events), as
  reproduced field by field in
  https://info.apiant.com/03b-update-appointment-booking-instant-in-mindbody-zapier
- Events: ``appointmentBooking.created``, ``.updated``, ``.cancelled``; since 2025 also
  ``clientArrival.created`` (a client checking in, which Rapport does not act on).
- Delivery: answer 2xx within 10 seconds; a failed delivery is retried every 15 minutes
  for 3 hours; neither order nor exactly-once delivery is promised.

Not confirmed, and handled defensively:

- The values ``status`` takes in webhook events. The Public API's appointment statuses
  are Requested, Booked, Confirmed, Arrived, Completed, NoShow, Cancelled and
  LateCancelled; integrators also report ``Scheduled``. Each is mapped in
  :data:`STATUSES`; any other value is acknowledged and ignored (``IgnoredEvent``).
- The time zone of ``startDateTime`` / ``endDateTime``: a time with an offset is taken
  as given, one without is read as UTC (the Public API gives the site's local time
  without an offset; Rapport acts on the status, not on these times).
- Ids arrive as numbers or as strings (``clientId`` is the business's own client id);
  either is accepted and kept as text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from handlers.base import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    AppointmentEvent,
    Client,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    Person,
    SignatureError,
    json_object,
)

NAME = "mindbody"
SIGNATURE_HEADER = "x-mindbody-signature"
PREFIX = "sha256="
CREATED = "appointmentBooking.created"
UPDATED = "appointmentBooking.updated"
CANCELLED_EVENT = "appointmentBooking.cancelled"
EVENT_TYPES = (CREATED, UPDATED, CANCELLED_EVENT)

STATUSES = {
    # Not yet accepted by the business: tracked, so a later answer finds it.
    "Requested": BOOKED,
    "Booked": BOOKED,
    "Scheduled": BOOKED,
    "Confirmed": BOOKED,
    # The client has checked in: the visit is under way, not over.
    "Arrived": BOOKED,
    "Completed": COMPLETED,
    "NoShow": NO_SHOW,
    "Cancelled": CANCELLED,
    # Cancelled inside the business's cancellation window: still no visit.
    "LateCancelled": CANCELLED,
}
# Instants outside these years are not a booking's, whatever the body says.
EARLIEST, LATEST = 1970, 2200
MAX_ID = 64


def sign(body: bytes, *, signature_key: str) -> dict[str, str]:
    """The headers Mindbody sends with ``body``."""
    return {"Content-Type": "application/json", "X-Mindbody-Signature": _signature(body,
                                                                                   signature_key)}


def verify(request: InboundRequest, credentials: Mapping[str, Any]) -> None:
    """Raise :class:`SignatureError` unless one of ``credentials["signature_keys"]``
    signed this exact body. Every key is compared, so the time taken does not tell which
    one matched; with no key at all, nothing is accepted."""
    keys = credentials.get("signature_keys") or ()
    if isinstance(keys, str):
        keys = (keys,)
    keys = [key for key in keys if isinstance(key, str) and key]
    if not keys:
        raise SignatureError("no Mindbody signature key is configured")
    received = (request.header(SIGNATURE_HEADER) or "").strip()
    if not received:
        raise SignatureError("missing X-Mindbody-Signature header")
    received_bytes = received.encode("utf-8", "replace")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(_signature(request.body, key).encode("ascii"),
                                       received_bytes)
    if not matched:
        raise SignatureError("Mindbody signature does not match any configured key")


def delivery_id(request: InboundRequest) -> str:
    """Mindbody's ``messageId``: the same on every retry of one message."""
    value = json_object(request.body).get("messageId")
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise PayloadError("messageId", "missing or not a string")
    return value


def site_id(request: InboundRequest) -> str | None:
    """The Mindbody site (business) the event belongs to: one application subscription
    carries every activated site's events, so this routes them to a clinic."""
    data = json_object(request.body).get("eventData")
    value = data.get("siteId") if isinstance(data, dict) else None
    return _identifier(value)


def parse(request: InboundRequest) -> list[AppointmentEvent]:
    payload = json_object(request.body)
    event_type = payload.get("eventId")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("eventId", "missing or not a string")
    if event_type not in EVENT_TYPES:
        raise IgnoredEvent(event_type)
    try:
        event = _ENVELOPE.load(payload)
    except ValidationError as error:
        raise PayloadError(*_first_error(error.messages)) from None
    data = event["eventData"]
    status = CANCELLED if event_type == CANCELLED_EVENT else STATUSES.get(data["status"] or "")
    if status is None:
        raise IgnoredEvent(event_type, f"status {data['status']!r} is not one Rapport knows")
    if data["clientId"] is None:
        raise IgnoredEvent(event_type, "the appointment has no client")
    start, end = data["startDateTime"], data["endDateTime"]
    if start is not None and end is not None and end < start:
        raise PayloadError("eventData.endDateTime", "is before eventData.startDateTime")
    return [appointment_event(data, status=status, event_id=event["messageId"],
                              occurred_at=event["eventInstanceOriginationDateTime"])]


def appointment_event(data: Mapping[str, Any], *, status: str, event_id: str,
                      occurred_at: datetime) -> AppointmentEvent:
    names = [data.get("staffFirstName"), data.get("staffLastName")]
    therapist_name = " ".join(name.strip() for name in names if name and name.strip())
    staff_id = data.get("staffId")
    return AppointmentEvent(
        platform=NAME,
        event_id=event_id,
        occurred_at=occurred_at,
        appointment_id=data["appointmentId"],
        status=status,
        client=Client(id=data["clientId"], email=data.get("clientEmail") or None,
                      first_name=(data.get("clientFirstName") or "").strip() or None),
        start=data.get("startDateTime"),
        end=data.get("endDateTime"),
        service=(data.get("appointmentName") or "").strip() or None,
        therapist=Person(id=staff_id, name=therapist_name or None) if staff_id else None,
        location_id=data.get("locationId"),
    )


# --- the schema ----------------------------------------------------------------------


class Identifier(fields.Field):
    """An id Mindbody sends as a number or a string, kept as text."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = _identifier(value)
        if text is None:
            raise ValidationError("Not a valid id (a number or a string of at most "
                                  f"{MAX_ID} characters).")
        return text


class Instant(fields.Field):
    """An ISO 8601 time, in UTC: with its offset when it has one, else read as UTC."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError("Not a valid date and time.")
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValidationError("Not a valid date and time.") from None
        if not EARLIEST <= when.year <= LATEST:
            raise ValidationError(f"Not between {EARLIEST} and {LATEST}.")
        return when


def _text(length: int = 200) -> fields.String:
    return fields.String(allow_none=True, load_default=None, validate=validate.Length(max=length))


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _AppointmentData(_Lenient):
    siteId = Identifier(required=True)  # noqa: N815 - Mindbody's names
    appointmentId = Identifier(required=True)  # noqa: N815
    status = _text(40)
    clientId = Identifier(allow_none=True, load_default=None)  # noqa: N815
    clientFirstName = _text()  # noqa: N815
    clientEmail = fields.Email(allow_none=True, load_default=None)  # noqa: N815
    staffId = Identifier(allow_none=True, load_default=None)  # noqa: N815
    staffFirstName = _text()  # noqa: N815
    staffLastName = _text()  # noqa: N815
    startDateTime = Instant(allow_none=True, load_default=None)  # noqa: N815
    endDateTime = Instant(allow_none=True, load_default=None)  # noqa: N815
    locationId = Identifier(allow_none=True, load_default=None)  # noqa: N815
    appointmentName = _text()  # noqa: N815


class _Envelope(_Lenient):
    messageId = fields.String(required=True, validate=validate.Length(min=1, max=200))  # noqa: N815
    eventId = fields.String(required=True)  # noqa: N815
    eventInstanceOriginationDateTime = Instant(required=True)  # noqa: N815
    eventData = fields.Nested(_AppointmentData, required=True)  # noqa: N815


_ENVELOPE = _Envelope()


def _first_error(messages: Any, path: str = "") -> tuple[str, str]:
    if isinstance(messages, dict) and messages:
        key, value = next(iter(messages.items()))
        if key == "_schema":  # marshmallow's name for "this object itself"
            return _first_error(value, path)
        return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], path)
    return path or "body", str(messages)


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    return text if text and len(text) <= MAX_ID else None


def _signature(body: bytes, key: str) -> str:
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    return PREFIX + base64.b64encode(digest).decode("ascii")
