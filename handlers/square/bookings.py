"""Square's bookings and customers read as Rapport's appointments and clients.

A booking event (:mod:`handlers.square.webhooks`) and :func:`fetch_appointment` load the
booking with the same schema and turn it into an :class:`AppointmentEvent` here.

Square facts this module relies on, and where they are documented:

- A segment's ``intermission_minutes`` is the time between the end of that segment and the
  start of the next; the end is start + all durations + the intermissions between segments.
  https://developer.squareup.com/reference/square/objects/AppointmentSegment
- Customers have no language or locale field; Square keeps ``language_code`` on the
  Merchant and the Location only, so :func:`fetch_client` returns ``locale=None`` and the
  clinic's own language applies.
  https://developer.squareup.com/docs/build-basics/language-preferences
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from handlers.base import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    MAX_MINUTES,
    NO_SHOW,
    AppointmentEvent,
    Client,
    Instant,
    PayloadError,
    PermanentError,
    Person,
)
from handlers.bounds import MAX_VERSION
from handlers.square.api import _call, _customer, _segment

NAME = "square"

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


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _Segment(_Lenient):
    # Nullable in Square's specification; a segment without one adds no time.
    duration_minutes = fields.Integer(strict=True, allow_none=True, load_default=None,
                                      validate=validate.Range(min=0, max=MAX_MINUTES))
    intermission_minutes = fields.Integer(strict=True, allow_none=True, load_default=None,
                                          validate=validate.Range(min=-MAX_MINUTES,
                                                                  max=MAX_MINUTES))
    team_member_id = fields.String(required=True, validate=validate.Length(min=1))
    service_variation_id = fields.String(allow_none=True, load_default=None)


class _Booking(_Lenient):
    id = fields.String(required=True, validate=validate.Length(min=1))
    version = fields.Integer(required=True, strict=True,
                             validate=validate.Range(min=0, max=MAX_VERSION))
    # Any text: a status Square adds later is acknowledged and ignored (unusable()).
    status = fields.String(required=True, validate=validate.Length(min=1))
    start_at = Instant(required=True, default_timezone=UTC)
    updated_at = Instant(allow_none=True, load_default=None, default_timezone=UTC)
    customer_id = fields.String(allow_none=True, load_default=None)  # nullable in the spec
    location_id = fields.String(allow_none=True, load_default=None)
    seller_note = fields.String(allow_none=True, load_default=None)
    appointment_segments = fields.List(
        fields.Nested(_Segment), required=True, validate=validate.Length(min=1)
    )


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
    minutes = sum(segment["duration_minutes"] or 0 for segment in segments)
    minutes += sum(segment["intermission_minutes"] or 0 for segment in segments[:-1])
    end = start + timedelta(minutes=minutes)
    status = STATUSES[booking["status"]]
    if now is not None and booking["status"] == "ACCEPTED" and end <= now:
        status = COMPLETED
    return AppointmentEvent(
        platform=NAME,
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


def unusable(booking: Mapping[str, Any]) -> str | None:
    """Why a well-formed booking gives Rapport nothing to act on, or None."""
    if booking["status"] not in STATUSES:
        return f"status {booking['status']} is not one Rapport knows"
    if not booking["customer_id"]:
        return "the booking has no customer"
    return None


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
        name = "" if name == "_schema" else str(name)  # marshmallow's "this object itself"
        return ".".join(filter(None, [name, path])), message
    if isinstance(messages, list) and messages:
        return "", str(messages[0])
    return "", str(messages)


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
    if reason := unusable(booking):
        raise PermanentError(f"Square's booking {booking_id} is not usable: {reason}")
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
