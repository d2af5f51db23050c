"""``POST /webhooks/<platform>/<clinic_key>`` and ``POST /webhooks/<platform>``: verify,
store, enqueue, answer.

A clinic's own URL (``Webhooks.PER_CLINIC``) is verified with the clinic's secrets; the
platform's URL (``Webhooks.PER_APPLICATION``: one subscription for Rapport's whole
application) with the application's key, and routed to the clinic by the platform's
account id. The order of checks is fixed: unknown platform or clinic → 404; body too
large → 413; bad or missing signature → 401 (nothing stored); malformed body → 400
naming the field; an event type Rapport does not act on → 200 and a log line; a delivery
seen before → 200; otherwise the verified raw event, and the events the adapter read in
it, are stored in the inbox and 202 is answered. Everything else happens in jobs.

The webhook paths are served by ``WebhookReceiver``, a plain WSGI application in front
of Flask, which serves every other path. Webhooks are machine-to-machine and the
busiest path Rapport has; they need nothing Flask adds to a request (request and
response objects, a session, CSRF checks), which took about a fifth of the CPU each
webhook used (bench/ingest.py).
"""

from __future__ import annotations

import hashlib
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
    event_to_dict,
)
from plugin import metrics
from plugin.clinics import records, subscriptions
from plugin.web import inbox
from plugin.web.security import every_answer_headers

log = logging.getLogger(__name__)

PREFIX = "/webhooks/"
# Headers worth keeping with the raw event; cookies and credentials never are.
DROPPED_HEADERS = {"cookie", "authorization", "proxy-authorization"}

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
        status, payload = self._answer(environ, route)
        platform = route[0] if route and route[0] in handlers.REGISTRY else "unknown"
        metrics.EVENTS.labels(platform=platform, answer=str(status)).inc()
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   *self.always_headers]
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
        if environ.get("REQUEST_METHOD") != "POST":
            return _problem(405, "webhooks are delivered with POST")
        try:
            with self.app.app_context():
                if len(route) == 1:
                    return receive_for_application(environ, platform)
                return receive(environ, platform, route[1])
        except Exception:  # noqa: BLE001 - an answer, never a dropped connection
            log.exception("webhooks.failed: POST %s", environ.get("PATH_INFO"))
            return _problem(500, "the event could not be handled; please retry")


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
        account = platform.account_id(inbound)
        revoked = platform.revocation(inbound)
    except PayloadError as error:
        return _problem(400, f"{error.field}: {error.message}", field=error.field)
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


def dedupe_key(delivery_id: str) -> str:
    """The delivery id as the inbox keeps it (255 characters at most): a longer one by its
    SHA-256, so two ids that differ only past the 255th character stay two events."""
    if len(delivery_id) <= 255:
        return delivery_id
    return "sha256:" + hashlib.sha256(delivery_id.encode()).hexdigest()


def _store(platform: Platform, inbound: InboundRequest, clinic_id: int, extra: dict) -> Answer:
    """Read the verified body, keep it and what was read in the inbox, answer."""
    try:
        delivery = platform.delivery_id(inbound)
        events = [event_to_dict(event) for event in platform.parse(inbound)]
    except PayloadError as error:
        log.warning("webhooks.malformed-body: %s", error, extra=extra)
        return _problem(400, f"{error.field}: {error.message}", field=error.field)
    except IgnoredEvent as error:
        log.info("webhooks.ignored-event: %s: %s", error.event_type, error, extra=extra)
        answer = {"status": "ignored", "type": error.event_type}
        return 200, answer | ({"reason": error.reason} if error.reason else {})
    try:
        inbox_id = inbox.inbox(current_app).store(
            clinic_id=clinic_id, delivery_id=dedupe_key(delivery), body=inbound.body,
            headers={k: v for k, v in inbound.headers.items() if k not in DROPPED_HEADERS},
            events=events)
    except inbox.InboxUnavailable as error:
        # Not stored, so not acknowledged: the platform will deliver it again.
        log.error("webhooks.store-failed: %s", error, extra=extra)
        return _problem(503, "the event could not be stored; please retry")
    if inbox_id is None:
        log.info("webhooks.duplicate: %s", delivery, extra=extra)
        return 200, {"status": "duplicate"}
    return 202, {"status": "accepted", "id": inbox_id}


def init_app(app: Flask) -> None:
    app.wsgi_app = WebhookReceiver(app, app.wsgi_app)
