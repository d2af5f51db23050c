"""Errors to Sentry, when ``RAPPORT_SENTRY_DSN`` is set, with no personal data in them.

sentry-sdk is an optional extra (``pip install 'rapport[sentry]'``); its Flask and RQ
integrations report unhandled errors in requests and in jobs. Nothing about a client
leaves: no request bodies, cookies or headers that identify anyone, no local variables
(a job's frames hold addresses and names), no user; and every text and value in an event
is scrubbed before it is sent (:func:`scrub_event`): email addresses, survey links
(``/s/<token>``: the token opens a client's check-in), and fields named like personal
data or secrets.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from flask import Flask

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
SURVEY_LINK = re.compile(r"/s/[A-Za-z0-9_-]{8,}")
FILTERED = "[Filtered]"
PERSONAL_KEYS = frozenset({
    "email", "email_address", "first_name", "last_name", "given_name", "family_name",
    "phone", "phone_number", "client", "comment", "answers", "note", "cookies",
    "authorization", "token", "secret", "password", "credentials", "csrf_token",
    "webhook_secret", "callback_secret", "outbound_secret", "access_token",
    "refresh_token", "api_key",
})


class SentryUnavailable(RuntimeError):
    """A DSN is set but sentry-sdk is not installed; the message says what to install."""


def init_app(app: Flask) -> None:
    init(app.config)


def init(config) -> bool:
    """Start reporting to Sentry when a DSN is configured; whether it is on."""
    dsn = config.get("SENTRY_DSN")
    if not dsn:
        return False
    try:
        # Loaded only when asked for: an optional extra, and a heavy one for the
        # processes that never report.
        sentry_sdk = importlib.import_module("sentry_sdk")
        flask_integration = importlib.import_module("sentry_sdk.integrations.flask")
        rq_integration = importlib.import_module("sentry_sdk.integrations.rq")
    except ImportError:
        raise SentryUnavailable(
            "RAPPORT_SENTRY_DSN is set but sentry-sdk is not installed: "
            "pip install 'rapport[sentry]' (or unset RAPPORT_SENTRY_DSN)") from None
    sentry_sdk.init(
        dsn=dsn,
        environment=config.get("SENTRY_ENVIRONMENT") or None,
        traces_sample_rate=float(config.get("SENTRY_TRACES_SAMPLE_RATE") or 0),
        integrations=[flask_integration.FlaskIntegration(), rq_integration.RqIntegration()],
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        **_transport_for_tests(config),
    )
    return True


def _transport_for_tests(config) -> dict:
    """A transport given in the configuration (``SENTRY_TRANSPORT``, not a setting an
    environment variable can set): how a test receives the events a real client sends."""
    transport = config.get("SENTRY_TRANSPORT")
    return {"transport": transport} if transport is not None else {}


def scrub_event(event: dict, _hint: dict | None = None) -> dict:
    """The event with nothing personal left in it."""
    event.pop("user", None)
    request = event.get("request")
    if isinstance(request, dict):
        for name in ("data", "cookies", "query_string", "env"):
            request.pop(name, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items()
                                  if k.lower() not in ("cookie", "authorization", "referer",
                                                       "x-forwarded-for", "x-real-ip")}
    return scrub(event)


def scrub_breadcrumb(crumb: dict, _hint: dict | None = None) -> dict:
    return scrub(crumb)


def scrub(value: Any, key: str | None = None) -> Any:
    if key is not None and key.lower() in PERSONAL_KEYS:
        return FILTERED if value not in (None, "", [], {}) else value
    if isinstance(value, str):
        return SURVEY_LINK.sub("/s/" + FILTERED, EMAIL.sub(FILTERED, value))
    if isinstance(value, dict):
        return {k: scrub(v, k if isinstance(k, str) else None) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value
