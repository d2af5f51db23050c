"""Any booking system that speaks Standard Webhooks, directly or through middleware.

Inbound: ``POST /webhooks/generic/<clinic_key>`` with the ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` headers of the Standard Webhooks
specification (https://www.standardwebhooks.com/, HMAC-SHA256 over
``id.timestamp.body``, ±5 minutes), verified with the official ``standardwebhooks``
library. Body (DESIGN.md, "Generic platform")::

    {"type": "appointment.completed", "timestamp": "...",
     "data": {"appointment": {"id", "start", "end", "service"},
              "client": {"id", "email", "first_name", "locale"},
              "therapist": {"id", "name"}}}

Outbound: a Standard Webhooks POST of type ``client.alliance_updated`` to the clinic's
callback URL, signed with the clinic's outbound secret. ``webhook-id`` is stable for
one response, so a receiver that sees a retry can ignore it.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import requests
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from handlers.base import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    AppointmentEvent,
    Capabilities,
    Client,
    Completion,
    Connection,
    ConnectProblem,
    Field,
    IgnoredEvent,
    InboundRequest,
    Instant,
    Note,
    NotePlace,
    PayloadError,
    PermanentError,
    Person,
    Platform,
    Shown,
    SignatureError,
    TransientError,
    Webhooks,
    WriteBackResult,
    WriteBackTarget,
    http,
    json_document,
    reason_phrase,
    retry_after_seconds,
    shown_url,
)

CALLBACK_EVENT = "client.alliance_updated"
ANSWER_LIMIT = 64 * 1024  # bytes of a callback's answer read before it is let go

EVENT_STATUS = {
    "appointment.booked": BOOKED,
    "appointment.completed": COMPLETED,
    "appointment.cancelled": CANCELLED,
    "appointment.no_show": NO_SHOW,
}


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# --- inbound -------------------------------------------------------------------------


def verify(request: InboundRequest, credentials: Mapping[str, Any]) -> None:
    """Accept the request if any of the clinic's inbound secrets signed it."""
    candidates = [s for s in credentials.get("inbound_secrets", []) if s]
    if not candidates:
        raise SignatureError("no inbound secret is configured for this clinic")
    headers = {
        name: request.header(name) or ""
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    if not all(headers.values()):
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("the body is not UTF-8 text")
    reason = "no matching signature"
    for secret in candidates:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            return
        except WebhookVerificationError as error:
            reason = str(error)
        except (ValueError, TypeError):
            reason = "malformed webhook-signature header"
    raise SignatureError(reason)


def sign(body: bytes, *, secret: str, msg_id: str, timestamp: datetime | None = None) -> dict:
    """The Standard Webhooks headers for ``body``, as a sender would send them."""
    when = timestamp or datetime.now(timezone.utc)
    signature = Webhook(secret).sign(msg_id, when, body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def delivery_id(request: InboundRequest) -> str:
    value = request.header("webhook-id")
    if not value:
        raise PayloadError("webhook-id", "header is missing")
    return value


class Identifier(fields.String):
    """An id given as a string or a number (middleware often sends numbers)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = EXCLUDE


class AppointmentSchema(_Strict):
    id = Identifier(required=True, validate=validate.Length(min=1, max=255))
    start = Instant(load_default=None, allow_none=True)
    end = Instant(load_default=None, allow_none=True)
    service = fields.String(load_default=None, allow_none=True)


class ClientSchema(_Strict):
    id = Identifier(required=True, validate=validate.Length(min=1, max=255))
    email = fields.Email(load_default=None, allow_none=True)
    first_name = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=200))
    locale = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=35))


class TherapistSchema(_Strict):
    id = Identifier(required=True, validate=validate.Length(min=1, max=255))
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class DataSchema(_Strict):
    appointment = fields.Nested(AppointmentSchema, required=True)
    client = fields.Nested(ClientSchema, required=True)
    therapist = fields.Nested(TherapistSchema, load_default=None, allow_none=True)


class EventSchema(_Strict):
    type = fields.String(required=True)
    timestamp = Instant(required=True)
    data = fields.Nested(DataSchema, required=True)


# Built once: a schema instance holds no state between loads.
EVENT_SCHEMA = EventSchema()


def _first_error(messages: Any, path: str = "") -> tuple[str, str]:
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        if key == "_schema":  # marshmallow's name for "this object itself"
            return _first_error(value, path)
        return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], path)
    return path or "body", str(messages)


def parse(request: InboundRequest) -> list[AppointmentEvent]:
    document = json_document(request.body)
    if not isinstance(document, dict):
        raise PayloadError("body", "must be a JSON object")
    event_type = document.get("type")
    if not isinstance(event_type, str):
        raise PayloadError("type", "Missing data for required field." if event_type is None
                           else "Not a valid string.")
    if event_type not in EVENT_STATUS:
        raise IgnoredEvent(event_type)
    try:
        event = EVENT_SCHEMA.load(document)
    except ValidationError as error:
        raise PayloadError(*_first_error(error.messages))
    status = EVENT_STATUS[event_type]
    appointment = event["data"]["appointment"]
    if status in (BOOKED, COMPLETED):
        for name in ("start", "end"):
            if appointment[name] is None:
                raise PayloadError(f"data.appointment.{name}",
                                   f"is required for {event_type}")
        if appointment["end"] < appointment["start"]:
            raise PayloadError("data.appointment.end", "is before data.appointment.start")
    client = event["data"]["client"]
    therapist = event["data"]["therapist"]
    return [
        AppointmentEvent(
            platform="generic",
            event_id=request.header("webhook-id") or "",
            occurred_at=event["timestamp"].astimezone(timezone.utc),
            appointment_id=appointment["id"],
            status=status,
            client=Client(id=client["id"], email=client["email"],
                          first_name=client["first_name"], locale=client["locale"]),
            start=_utc(appointment["start"]),
            end=_utc(appointment["end"]),
            service=appointment["service"],
            therapist=Person(id=therapist["id"], name=therapist["name"]) if therapist else None,
        )
    ]


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(timezone.utc) if value else None


# --- outbound ------------------------------------------------------------------------


def callback_body(target: WriteBackTarget, note: Note, occurred_at: datetime) -> dict:
    """``client.alliance_updated``: the ids, ``note.summary`` (instrument, scores, trend,
    flags, …), the talking points and the rendered note."""
    return {
        "type": CALLBACK_EVENT,
        "timestamp": occurred_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "data": {
            **dict(note.summary),
            "client": {"id": target.client_id},
            "appointment": {"id": target.appointment_id},
            "therapist": {"id": target.therapist_id} if target.therapist_id else None,
            "talking_points": list(note.talking_points),
            "note": note.text,
        },
    }


def write_back(credentials: Mapping[str, Any], target: WriteBackTarget, note: Note, *,
               delivery_id: str, occurred_at: datetime) -> WriteBackResult:
    """POST the signed ``client.alliance_updated`` event to the clinic's callback URL
    (through :func:`handlers.base.http`, which counts the clinic's calls)."""
    url = credentials.get("callback_url")
    timeout = float(credentials.get("timeout") or 10)
    if not url:
        raise PermanentError("the clinic has no callback URL")
    body = json.dumps(callback_body(target, note, occurred_at), ensure_ascii=False).encode()
    headers = sign(body, secret=credentials["outbound_secret"], msg_id=delivery_id)
    # While the secret is being rotated, a signature with each older one too (Standard
    # Webhooks takes several, space-separated): the receiver verifies with either.
    for older in credentials.get("previous_outbound_secrets") or ():
        headers["webhook-signature"] += " " + sign(
            body, secret=older, msg_id=delivery_id,
            timestamp=_timestamp(headers))["webhook-signature"]
    headers["content-type"] = "application/json; charset=utf-8"
    headers["user-agent"] = "Rapport/0.1 (+alliance check-ins)"
    where = shown_url(url)
    try:
        # The status says all Rapport needs: of the answer's body, at most
        # ANSWER_LIMIT bytes are read (an answer that breaks off is a failed exchange),
        # and none of it is kept.
        with http(credentials).post(url, data=body, headers=headers, timeout=timeout,
                                    allow_redirects=False, stream=True) as response:
            status, reason = response.status_code, reason_phrase(response.reason)
            retry_after = response.headers.get("Retry-After")
            read = 0
            for chunk in response.iter_content(8192):
                read += len(chunk)
                if read >= ANSWER_LIMIT:
                    break
    except requests.Timeout:
        raise TransientError(f"{where} did not answer within {timeout} s")
    except requests.ConnectionError as error:
        raise TransientError(f"cannot connect to {where}: {error.__class__.__name__}")
    except requests.RequestException as error:
        # The answer could not be read (a broken body, a bad header): the receiver may
        # have the event; the next attempt carries the same webhook-id.
        raise TransientError(f"the exchange with {where} failed: {error.__class__.__name__}")
    if 200 <= status < 300:
        return WriteBackResult(target="callback", detail={"status": status, "url": where})
    summary = f"{where} answered {status}{' ' + reason if reason else ''}"
    if status == 429 or status >= 500:
        raise TransientError(summary, retry_after=retry_after_seconds(retry_after))
    raise PermanentError(summary)


def _timestamp(headers: Mapping[str, str]) -> datetime:
    return datetime.fromtimestamp(int(headers["webhook-timestamp"]), timezone.utc)


def _http_url(value: str | None, option: str) -> str:
    parsed = urlparse(value or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConnectProblem(f"{option} must be an http(s) URL, e.g. https://example.com/hook")
    return value


class GenericPlatform(Platform):
    """Standard Webhooks in (one URL and secret per clinic), a signed callback out. It has
    no API: a client is only what the webhook said."""

    name = "generic"
    title = "Standard Webhooks"
    capabilities = Capabilities(
        completion=Completion.STATUS,
        note_places=frozenset({NotePlace.CALLBACK}),
        connections=frozenset({Connection.SHARED_SECRET}),
        webhooks=frozenset({Webhooks.PER_CLINIC}),
        note_limit=2000,
    )
    connect_fields = (
        Field("callback_url", "generic: where Rapport POSTs client.alliance_updated.",
              label="Callback URL"),
    )

    def credentials_from(self, given, settings):
        if not given.get("callback_url"):
            raise ConnectProblem(
                "--callback-url is required for the generic platform: the URL where "
                "Rapport POSTs the client.alliance_updated event with the scores and note")
        return {
            "inbound_secrets": [new_secret()],
            "outbound_secret": new_secret(),
            "callback_url": _http_url(given["callback_url"], "--callback-url"),
        }

    def new_secret(self) -> str:
        return new_secret()

    def shown(self, credentials):
        return [Shown("webhook_secret", "Webhook secret:", credentials["inbound_secrets"][0]),
                Shown("callback_url", "Callback URL:", credentials["callback_url"]),
                Shown("callback_secret", "Callback signing secret:",
                      credentials["outbound_secret"])]

    def next_steps(self, credentials, clinic_key):
        return [
            "",
            "Next: in your booking system (or middleware), send Standard Webhooks to the",
            "webhook URL, signed with the webhook secret. Verify Rapport's callbacks with",
            "the callback signing secret. Keep both secrets private.",
        ]

    def reconnect_hint(self, credentials, clinic_key):
        return f"rotate its webhook secret: rapport clinic rotate-secret {clinic_key}"

    def callback_url(self, credentials):
        return credentials.get("callback_url")

    def with_callback_url(self, credentials, url):
        return {**credentials, "callback_url": _http_url(url, "--callback-url")}

    def with_new_callback_secret(self, credentials, *, retire_old):
        if retire_old:
            return {**credentials, "previous_outbound_secrets": []}, None
        secret = new_secret()
        older = [credentials["outbound_secret"],
                 *(credentials.get("previous_outbound_secrets") or ())]
        return {**credentials, "outbound_secret": secret,
                "previous_outbound_secrets": older}, secret

    def verify(self, request, credentials):
        verify(request, credentials)

    def delivery_id(self, request):
        return delivery_id(request)

    def parse(self, request):
        return parse(request)

    def write_back(self, credentials, target, note, *, delivery_id, occurred_at):
        return write_back(credentials, target, note, delivery_id=delivery_id,
                          occurred_at=occurred_at)


PLATFORM = GenericPlatform()
