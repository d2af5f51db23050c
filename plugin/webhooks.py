"""``POST /webhooks/<platform>/<clinic_key>``: verify, store, enqueue, answer.

The order of checks is fixed: unknown clinic → 404; body too large → 413; bad or
missing signature → 401 (nothing stored); malformed body → 400 naming the field; an
event type Rapport does not act on → 200 and a log line; a delivery seen before → 200;
otherwise the verified raw event is stored in the inbox and 202 is answered. Everything
else happens in jobs.

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
from handlers.base import IgnoredEvent, InboundRequest, PayloadError, SignatureError
from plugin import clinics, inbox
from plugin.security import every_answer_headers

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
            # with it, for Square): it is the same endpoint.
            route.pop()
        status, payload = self._answer(environ, route)
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   *self.always_headers]
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def _answer(self, environ: dict, route: list[str]) -> Answer:
        if route != ["square"] and (len(route) != 2 or not all(route)):
            return _problem(404, "no webhook endpoint at this address")
        if environ.get("REQUEST_METHOD") != "POST":
            return _problem(405, "webhooks are delivered with POST")
        try:
            with self.app.app_context():
                if route == ["square"]:
                    return receive_square(environ)
                return receive(environ, *route)
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


def receive(environ: dict, platform: str, clinic_key: str) -> Answer:
    if platform not in handlers.PLATFORMS:
        return _problem(404, f"no platform called {platform!r}")
    target = clinics.webhook_target(clinic_key, platform)
    if target is None:
        return _problem(404, "no clinic with this key")
    inbound, refusal = _inbound(environ)
    if refusal:
        return refusal
    extra = {"platform": platform, "clinic": clinic_key}
    adapter = handlers.adapter(platform)
    try:
        adapter.verify(inbound, target.credentials)
    except SignatureError as error:
        return _unsigned(error, extra)
    return _store(adapter, inbound, target.clinic_id, extra)


def receive_square(environ: dict) -> Answer:
    """Square's application-wide subscription: every connected seller's events, told
    apart by merchant id (see plugin/square_install.py)."""
    from handlers import square
    from plugin import square_install

    verifying = square_install.application_webhook()
    if verifying is None:
        return _problem(404, "no Square application webhook is configured")
    inbound, refusal = _inbound(environ)
    if refusal:
        return refusal
    extra = {"platform": "square", "clinic": None}
    try:
        square.verify(inbound, verifying)
    except SignatureError as error:
        return _unsigned(error, extra)
    try:
        merchant = square.merchant_id(inbound)
    except PayloadError as error:
        return _problem(400, f"{error.field}: {error.message}", field=error.field)
    clinic_id = clinics.clinic_for_account("square", merchant) if merchant else None
    if clinic_id is None:
        # A seller who disconnected, or one of the application's other sellers.
        log.info("webhooks.unknown-merchant: %s", merchant, extra=extra)
        return 200, {"status": "ignored", "reason": "unknown merchant"}
    extra["clinic"] = clinic_id
    revoked = square.revocation(inbound)
    if revoked:
        # Acted on before the answer, and idempotent, so it needs no inbox: the clinic
        # shows "needs reconnecting" now rather than at its next call to Square.
        noted = square_install.note_revocation(clinic_id, revoked[1])
        log.warning("webhooks.square-access-revoked: merchant %s%s", merchant,
                    "" if noted else " (before the clinic last connected: ignored)",
                    extra=extra)
        return 200, {"status": "noted" if noted else "ignored", "type": square.REVOKED}
    return _store(square, inbound, clinic_id, extra)


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


def _store(adapter, inbound: InboundRequest, clinic_id: int, extra: dict) -> Answer:
    """Validate the verified body, keep it in the inbox, answer."""
    try:
        delivery = adapter.delivery_id(inbound)
        adapter.parse(inbound)
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
            headers={k: v for k, v in inbound.headers.items() if k not in DROPPED_HEADERS})
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
