"""``POST /webhooks/<platform>/<clinic_key>`` and ``POST /webhooks/<platform>``: verify,
store, enqueue, answer.

A clinic's own URL (``Webhooks.PER_CLINIC``) is verified with the clinic's secrets; the
platform's URL (``Webhooks.PER_APPLICATION``: one subscription for Rapport's whole
application) with the application's key, and routed to the clinic by the platform's
account id. A ``HEAD`` request on a webhook address is answered 200 with no body: some
platforms check a URL that way before they deliver to it (as a subscription is created),
even before Rapport holds the subscription's key. The order of checks for a ``POST`` is
fixed: unknown platform or clinic → 404; body too large → 413; bad or missing signature →
401 (nothing stored); malformed body → 400 naming the field; an event type Rapport does
not act on → 200 and a log line; a delivery seen before → 200; otherwise the verified raw
event, and the events the adapter read in it, are stored in the inbox and 202 is answered.
Everything else happens in jobs.

A verified body is never answered 500, which platforms retry for days: one the adapter
failed to read in a way it did not foresee (a bug, or garbage it did not expect) gets
400 and a logged traceback, and one whose times are out of any booking's range (year 1,
year 9999) gets 400 naming the time. An address whose requests keep being refused (bad
signatures, unknown clinics) is answered 429 for the rest of the minute, before its body
is read (``plugin.web.limits``). Nothing before the signature check takes the database's
write lock.

The webhook paths are served by ``WebhookReceiver``, a plain WSGI application in front
of Flask, which serves every other path. Webhooks are machine-to-machine and the
busiest path Rapport has; they need nothing Flask adds to a request (request and
response objects, a session, CSRF checks), which took about a fifth of the CPU each
webhook used (bench/ingest.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from flask import Flask, current_app
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

import handlers
from handlers.base import (
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    Platform,
    SignatureError,
    Webhooks,
)
from plugin import metrics
from plugin.clinics import records, subscriptions
from plugin.store import database
from plugin.web import deliveries, inbox, limits
from plugin.web.security import every_answer_headers

log = logging.getLogger(__name__)

PREFIX = "/webhooks/"
# Answers that count against an address's refusals (limits.RATE_LIMIT_WEBHOOK_REFUSALS):
# what an unsigned request gets. A 400 comes after the signature verified: never counted.
REFUSALS = frozenset({401, 404, 405, 413})

Answer = tuple[int, dict[str, Any]]


def _problem(status: int, message: str, **extra) -> Answer:
    return status, {"error": message, **extra}


class WebhookReceiver:
    """WSGI middleware: ``POST /webhooks/…`` is answered here, anything else goes on to
    ``fallback`` (the Flask application's own ``wsgi_app``)."""

    def __init__(self, app: Flask, fallback: Callable):
        self.app = app
        self.fallback = fallback
        self.always_headers = every_answer_headers(app)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.fallback(environ, start_response)
        # WSGI gives the path's bytes as latin-1; the address was UTF-8.
        route = path[len(PREFIX):].encode("latin-1").decode("utf-8", "replace").split("/")
        if len(route) > 1 and route[-1] == "":
            # A URL registered with a trailing slash is delivered to with it (and signed
            # with it, where the platform signs the URL): it is the same endpoint.
            route.pop()
        refusals = limits.limits(self.app)["webhook_refusals"]
        address = limits.client_address(environ)
        extra_headers = []
        if refusals.exceeded(address):
            status, payload = _problem(429, "too many refused requests from this address; "
                                       "try again shortly")
            extra_headers.append(("Retry-After", str(refusals.retry_after())))
        else:
            status, payload = self._answer(environ, route)
            if status in REFUSALS:
                refusals.hit(address)
        platform = route[0] if route and route[0] in handlers.REGISTRY else "unknown"
        metrics.EVENTS.labels(platform=platform, answer=str(status)).inc()
        body = json.dumps(payload, separators=(",", ":")).encode()
        if environ.get("REQUEST_METHOD") == "HEAD":
            body = b""
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   *self.always_headers, *extra_headers]
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def _answer(self, environ: dict, route: list[str]) -> Answer:
        if not 1 <= len(route) <= 2 or not all(route):
            return _problem(404, "no webhook endpoint at this address")
        if route[0] not in handlers.REGISTRY:
            return _problem(404, f"no platform called {route[0]!r}")
        platform = _platform(route[0], Webhooks.PER_CLINIC if len(route) == 2
                             else Webhooks.PER_APPLICATION)
        if platform is None:
            return _problem(404, "no webhook endpoint at this address")
        if environ.get("REQUEST_METHOD") == "HEAD":
            # The platform checking the address answers: it takes POSTs.
            return 200, {"status": "ready"}
        if environ.get("REQUEST_METHOD") != "POST":
            return _problem(405, "webhooks are delivered with POST")
        try:
            with self.app.app_context():
                if len(route) == 1:
                    return receive_for_application(environ, platform)
                return receive(environ, platform, route[1])
        except Exception:  # noqa: BLE001 - an answer, never a dropped connection
            # Not the body (a verified one Rapport cannot read gets 400 in _read): the
            # database or the clinic's record out of reach. The platform retries.
            log.exception("webhooks.failed: POST %s", environ.get("PATH_INFO"))
            return _problem(503, "the event could not be handled; please retry")


def _inbound(environ: dict) -> tuple[InboundRequest | None, Answer | None]:
    """The request's raw body and headers, or the 413 answer. Read only once the
    address has been checked."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    try:
        # One byte past the limit: a body sent in chunks, with no length given, is cut
        # there rather than refused, and the extra byte is how that shows.
        body = get_input_stream(environ, max_content_length=limit + 1).read()
    except RequestEntityTooLarge:
        body = None
    if body is None or len(body) > limit:
        return None, _problem(413, f"the body is larger than {limit // 1024} KB")
    headers = {name[5:].replace("_", "-"): value
               for name, value in environ.items() if name.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.replace("_", "-")] = environ[name]
    return InboundRequest(body=body, headers=headers), None


def _platform(name: str, route: Webhooks) -> Platform | None:
    """The platform ``name``, if it takes webhooks by this route."""
    platform = handlers.platform(name)
    return platform if route in platform.capabilities.webhooks else None


def receive(environ: dict, platform: Platform, clinic_key: str) -> Answer:
    with database.read_only():
        target = records.webhook_target(clinic_key, platform.name)
    if target is None:
        return _problem(404, "no clinic with this key")
    inbound, refusal = _inbound(environ)
    if refusal:
        return refusal
    extra = {"platform": platform.name, "clinic": clinic_key}
    try:
        platform.verify(inbound, target.credentials)
    except SignatureError as error:
        return _unsigned(error, extra)
    return _store(platform, inbound, target.clinic_id, extra)


def receive_for_application(environ: dict, platform: Platform) -> Answer:
    """The application-wide subscription: every connected account's events, told apart
    by the platform's account id."""
    with database.read_only():
        verifying = subscriptions.application_webhook(platform)
    if verifying is None:
        return _problem(404, f"no {platform.title} application webhook is configured")
    inbound, refusal = _inbound(environ)
    if refusal:
        return refusal
    extra = {"platform": platform.name, "clinic": None}
    try:
        platform.verify(inbound, verifying)
    except SignatureError as error:
        return _unsigned(error, extra)
    try:
        account, revoked = _read(extra, lambda: (platform.account_id(inbound),
                                                 platform.revocation(inbound)))
    except _Unreadable as refusal:
        return refusal.answer
    with database.read_only():
        clinic_id = records.clinic_for_account(platform.name, account) if account else None
    if clinic_id is None:
        # An account that disconnected, or one of the application's other accounts.
        log.info("webhooks.unknown-account: %s", account, extra=extra)
        return 200, {"status": "ignored", "reason": "unknown account"}
    extra["clinic"] = clinic_id
    if revoked:
        # Acted on before the answer, and idempotent, so it needs no inbox: the clinic
        # shows "needs reconnecting" now rather than at its next call to the platform.
        noted = subscriptions.note_revocation(clinic_id, revoked.at)
        log.warning("webhooks.access-revoked: account %s%s", account,
                    "" if noted else " (before the clinic last connected: ignored)",
                    extra=extra)
        return 200, {"status": "noted" if noted else "ignored", "type": "access-revoked"}
    return _store(platform, inbound, clinic_id, extra)


def _unsigned(error: SignatureError, extra: dict) -> Answer:
    log.warning("webhooks.invalid-signature: %s", error, extra=extra)
    # The reason (a stale timestamp, a missing header) tells the sender what to fix and
    # nothing about the secret.
    return _problem(401, "the signature does not verify", reason=str(error))


def _store(platform: Platform, inbound: InboundRequest, clinic_id: int, extra: dict) -> Answer:
    """Read the verified body, keep it and what was read in the inbox, answer."""
    try:
        entry = _read(extra, lambda: deliveries.entry(platform, inbound))
    except _Unreadable as refusal:
        return refusal.answer
    try:
        inbox_id = inbox.inbox(current_app).store(clinic_id=clinic_id, entry=entry)
    except inbox.InboxUnavailable as error:
        # Not stored, so not acknowledged: the platform will deliver it again.
        log.error("webhooks.store-failed: %s", error, extra=extra)
        return _problem(503, "the event could not be stored; please retry")
    if inbox_id is None:
        log.info("webhooks.duplicate: %s", entry.delivery_id, extra=extra)
        return 200, {"status": "duplicate"}
    return 202, {"status": "accepted", "id": inbox_id}


class _Unreadable(Exception):
    """A verified body that gives Rapport nothing to store; ``answer`` says why."""

    def __init__(self, answer: Answer):
        super().__init__(answer)
        self.answer = answer


def _read(extra: dict, reading: Callable):
    """What ``reading`` reads from a verified body, or :class:`_Unreadable` with the
    answer: 400 naming the field, 200 for an event Rapport does not act on, and 400 for
    anything else the adapter raised (logged with its traceback), never 500."""
    try:
        return reading()
    except PayloadError as error:
        log.warning("webhooks.malformed-body: %s", error, extra=extra)
        raise _Unreadable(_problem(400, f"{error.field}: {error.message}", field=error.field))
    except IgnoredEvent as error:
        log.info("webhooks.ignored-event: %s: %s", error.event_type, error, extra=extra)
        answer = {"status": "ignored", "type": error.event_type}
        raise _Unreadable((200, answer | ({"reason": error.reason} if error.reason else {})))
    except Exception as error:  # noqa: BLE001 - the body is signed: never a 500 retried for days
        log.exception("webhooks.unreadable-body: %s", error.__class__.__name__, extra=extra)
        raise _Unreadable(_problem(400, "body: Rapport could not read this body "
                                   f"({error.__class__.__name__})", field="body"))


def init_app(app: Flask) -> None:
    app.wsgi_app = WebhookReceiver(app, app.wsgi_app)
