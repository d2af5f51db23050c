"""Acuity's webhook deliveries: the signature, the delivery id, and the form body read as
:class:`AppointmentEvent` s that name the appointment and little else.

Acuity facts this module relies on, and where they are documented:

- Deliveries are ``application/x-www-form-urlencoded`` POSTs of ``action``, ``id`` (the
  appointment's, or an order's), ``calendarID`` and ``appointmentTypeID`` (these two only
  for appointments). Actions: ``scheduled`` (once, when first booked), ``rescheduled``,
  ``canceled``, ``changed`` (any change, including the three before and edits such as an
  e-mail address or intake form), and ``order.completed``. Using ``changed`` together with
  the specific actions "may lead to duplicate requests".
  https://developers.acuityscheduling.com/docs/webhooks
- Signature: header ``X-Acuity-Signature`` = base64(HMAC-SHA256(API key, raw body)), the
  main admin's API key for static webhooks, the user's own for webhooks created through the
  API. No timestamp and no event id, so no replay window and no id to deduplicate on.
  Same page, "Verifying Webhook Requests"; Acuity's SDK compares with ``!==``
  (AcuityScheduling/acuity-js ``src/index.js``, ``verifyMessageSignature``): here every key
  is compared in constant time instead.
- The webhook carries only ids: "Retrieve the full appointment details using our
  get-appointments API". https://developers.acuityscheduling.com/page/webhooks-webhooks-webhooks

Not confirmed, and handled defensively:

- The ``action`` value of a webhook created through the API: the static-webhook page lists
  ``scheduled`` …, the dynamic one subscribes to ``appointment.scheduled`` …, and public
  integrations check for either. Both spellings are accepted.
- Retries: Acuity documents none. Identical deliveries get one delivery id, a digest of
  (platform, appointment id, action, body); so do two real ``rescheduled`` deliveries of one
  appointment, which is harmless because Rapport re-reads the appointment before acting.
- The event's time: the body has none. ``occurred_at`` is when Rapport read the delivery;
  events are ordered by what :func:`~handlers.acuity.appointments.fetch_appointment` reads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from handlers.base import (
    BOOKED,
    CANCELLED,
    AppointmentEvent,
    Client,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    SignatureError,
)

NAME = "acuity"
SIGNATURE_HEADER = "X-Acuity-Signature"
CONTENT_TYPE = "application/x-www-form-urlencoded"
# What each action says before Rapport reads the appointment. ``changed`` says nothing about
# its state: it is reported as booked, and the appointment read decides (events_name_only).
ACTION_STATUS = {
    "scheduled": BOOKED,
    "rescheduled": BOOKED,
    "canceled": CANCELLED,
    "changed": BOOKED,
}
IGNORED_ACTIONS = ("order.completed",)
# The documented body is four short fields; anything far larger is not Acuity's.
MAX_BODY_BYTES = 8192
MAX_FIELDS = 16
_NUMBER = r"\A[1-9][0-9]{0,19}\Z"


def sign(body: bytes, *, api_key: str) -> dict[str, str]:
    """The headers Acuity sends with ``body`` signed with ``api_key``."""
    return {"Content-Type": CONTENT_TYPE, SIGNATURE_HEADER: _signature(body, api_key)}


def signing_keys(credentials: Mapping[str, Any]) -> list[str]:
    """The API keys a delivery may be signed with: the current one, then those it replaced
    and that are still accepted while Acuity's retries drain (rotation)."""
    keys = [credentials.get("api_key"), *(credentials.get("previous_api_keys") or ())]
    found: list[str] = []
    for key in keys:
        if isinstance(key, str) and key and key not in found:
            found.append(key)
    return found


def verify(request: InboundRequest, credentials: Mapping[str, Any]) -> None:
    """Raise :class:`SignatureError` unless one of the clinic's API keys signed the raw body."""
    keys = signing_keys(credentials)
    if not keys:
        raise SignatureError("no Acuity API key is configured for this clinic")
    received = (request.header(SIGNATURE_HEADER) or "").strip()
    if not received:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    received_bytes = received.encode("utf-8", "replace")
    # Every key is compared, so the time taken does not tell which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(_signature(request.body, key).encode("ascii"),
                                       received_bytes)
    if not matched:
        raise SignatureError("Acuity signature does not match any of the clinic's API keys")


def delivery_id(request: InboundRequest) -> str:
    """A digest of (platform, appointment id, action, body): Acuity sends no event id, and
    a repeated delivery of the same body is the same delivery."""
    form = _form(request.body)
    action = _action(form)
    identifier = form.get("id") or ""
    digest = hashlib.sha256("\x1f".join((NAME, identifier, action)).encode("utf-8")
                            + b"\x1f" + request.body)
    return f"acuity:{digest.hexdigest()[:40]}"


def parse(request: InboundRequest) -> list[AppointmentEvent]:
    """The delivery as one event naming the appointment, or :class:`IgnoredEvent`.

    The event has no client, times or therapist (``client.id`` is empty): Acuity's body has
    none of them, so Rapport reads the appointment (``events_name_only``) before acting.
    """
    form = _form(request.body)
    action = _action(form)
    short = action.removeprefix("appointment.")
    if action in IGNORED_ACTIONS:
        raise IgnoredEvent(action, f"{action} is about an order, not an appointment")
    if short not in ACTION_STATUS:
        raise IgnoredEvent(action)
    try:
        values = _Delivery().load(form)
    except ValidationError as error:
        name, messages = next(iter(error.messages.items()))
        raise PayloadError(str(name), _first(messages)) from None
    return [
        AppointmentEvent(
            platform=NAME,
            event_id=delivery_id(request),
            occurred_at=datetime.now(UTC),
            appointment_id=values["id"],
            status=ACTION_STATUS[short],
            client=Client(id=""),
        )
    ]


class _Delivery(Schema):
    class Meta:
        unknown = EXCLUDE

    action = fields.String(required=True)
    id = fields.String(required=True, validate=validate.Regexp(
        _NUMBER, error="must be a positive whole number"))
    calendarID = fields.String(load_default=None, validate=validate.Regexp(
        _NUMBER, error="must be a positive whole number"))
    appointmentTypeID = fields.String(load_default=None, validate=validate.Regexp(
        _NUMBER, error="must be a positive whole number"))


def _form(body: bytes) -> dict[str, str]:
    """The form fields, each given once, or :class:`PayloadError` naming what is wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError("body", f"larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("body", "not UTF-8 text") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          max_num_fields=MAX_FIELDS, errors="strict")
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadError("body", f"not a form-encoded body ({error})") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            # Named by its name; one with none (``=1&=2``) by the body it is in.
            raise PayloadError(name or "body", "given more than once" if name
                               else "a field with no name is given more than once")
        form[name] = value
    return form


def _action(form: Mapping[str, str]) -> str:
    action = form.get("action")
    if not action:
        raise PayloadError("action", "missing or empty")
    if len(action) > 64:
        raise PayloadError("action", "longer than 64 characters")
    return action


def _first(messages: Any) -> str:
    if isinstance(messages, list) and messages:
        return str(messages[0])
    return str(messages)


def _signature(body: bytes, key: str) -> str:
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
