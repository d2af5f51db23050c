"""``POST /webhooks/<platform>/<clinic_key>``: verify, store, enqueue, answer.

The order of checks is fixed: unknown clinic → 404; body too large → 413; bad or
missing signature → 401 (nothing stored); malformed body → 400 naming the field; an
event type Rapport does not act on → 200 and a log line; a delivery seen before → 200;
otherwise the verified raw event is stored in the inbox and 202 is answered. Everything
else happens in jobs.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

import handlers
from handlers.base import IgnoredEvent, InboundRequest, PayloadError, SignatureError
from plugin import clinics, inbox

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

# Headers worth keeping with the raw event; cookies and credentials never are.
DROPPED_HEADERS = {"cookie", "authorization", "proxy-authorization"}


def _accepted(inbox_id: int) -> Response:
    return Response(b'{"status":"accepted","id":%d}' % inbox_id, status=202,
                    mimetype="application/json")


def _problem(status: int, message: str, **extra):
    return jsonify({"error": message, **extra}), status


def _inbound():
    """The request's raw body and headers, or the 413 answer."""
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        limit = current_app.config["MAX_CONTENT_LENGTH"] // 1024
        return None, _problem(413, f"the body is larger than {limit} KB")
    headers = {name.lower(): value for name, value in request.headers.items()}
    return InboundRequest(body=body, headers=headers), None


@bp.post("/webhooks/<platform>/<clinic_key>")
def receive(platform: str, clinic_key: str):
    if platform not in handlers.PLATFORMS:
        return _problem(404, f"no platform called {platform!r}")
    target = clinics.webhook_target(clinic_key, platform)
    if target is None:
        return _problem(404, "no clinic with this key")
    inbound, refusal = _inbound()
    if refusal:
        return refusal
    extra = {"platform": platform, "clinic": clinic_key}
    adapter = handlers.adapter(platform)
    try:
        adapter.verify(inbound, target.credentials)
    except SignatureError as error:
        log.warning("webhooks.invalid-signature: %s", error, extra=extra)
        return _problem(401, "the signature does not verify")
    return _store(adapter, inbound, target.clinic_id, extra)


@bp.post("/webhooks/square")
def receive_square():
    """Square's application-wide subscription: every connected seller's events, told
    apart by merchant id (see plugin/square_install.py)."""
    from handlers import square
    from plugin import square_install

    verifying = square_install.application_webhook()
    if verifying is None:
        return _problem(404, "no Square application webhook is configured")
    inbound, refusal = _inbound()
    if refusal:
        return refusal
    extra = {"platform": "square", "clinic": None}
    try:
        square.verify(inbound, verifying)
    except SignatureError as error:
        log.warning("webhooks.invalid-signature: %s", error, extra=extra)
        return _problem(401, "the signature does not verify")
    try:
        merchant = square.merchant_id(inbound)
    except PayloadError as error:
        return _problem(400, f"{error.field}: {error.message}", field=error.field)
    clinic_id = clinics.clinic_for_account("square", merchant) if merchant else None
    if clinic_id is None:
        # A seller who disconnected, or one of the application's other sellers.
        log.info("webhooks.unknown-merchant: %s", merchant, extra=extra)
        return jsonify({"status": "ignored", "reason": "unknown merchant"}), 200
    extra["clinic"] = clinic_id
    return _store(square, inbound, clinic_id, extra)


def _store(adapter, inbound: InboundRequest, clinic_id: int, extra: dict):
    """Validate the verified body, keep it in the inbox, answer."""
    try:
        delivery = adapter.delivery_id(inbound)
        adapter.parse(inbound)
    except PayloadError as error:
        log.warning("webhooks.malformed-body: %s", error, extra=extra)
        return _problem(400, f"{error.field}: {error.message}", field=error.field)
    except IgnoredEvent as error:
        log.info("webhooks.ignored-event: %s", error.event_type, extra=extra)
        return jsonify({"status": "ignored", "type": error.event_type}), 200
    try:
        inbox_id = inbox.inbox(current_app).store(
            clinic_id=clinic_id, delivery_id=delivery[:255], body=inbound.body,
            headers={k: v for k, v in inbound.headers.items() if k not in DROPPED_HEADERS})
    except inbox.InboxUnavailable as error:
        # Not stored, so not acknowledged: the platform will deliver it again.
        log.error("webhooks.store-failed: %s", error, extra=extra)
        return _problem(503, "the event could not be stored; please retry")
    if inbox_id is None:
        log.info("webhooks.duplicate: %s", delivery, extra=extra)
        return jsonify({"status": "duplicate"}), 200
    return _accepted(inbox_id)
