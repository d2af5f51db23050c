"""The HTTP layer for Square's API: authenticated calls with explicit timeouts, and
Square's answers turned into Rapport's named errors (handlers.base); with the small
helpers every call builds its path and idempotency key with. Every call goes through
:func:`handlers.base.http` (the caller counts each clinic's calls through it).

Square facts this module relies on, and where they are documented:

- ``INSUFFICIENT_SCOPES`` (category ``AUTHENTICATION_ERROR``): "The provided access token
  does not have permission to execute the requested action" — a scope the seller did not
  grant, told apart from other 403s as :class:`MissingPermission` (spec, ``ErrorCode``).
- Rate limits are not published; a throttled call is answered 429 RATE_LIMITED and should be
  retried with exponential backoff.
  https://developer.squareup.com/docs/general-troubleshooting,
  https://developer.squareup.com/forums/t/getting-rate-limited-error-on-a-dev-server/7842

Not confirmed, and handled defensively:

- The HTTP status of a version mismatch on customers and bookings. ``VERSION_MISMATCH``
  appears in Square's Payments documentation but not in the spec's ``ErrorCode`` enum, which
  has ``CONFLICT``; any 409 and either code is treated as a conflict.
- Whether a 429 carries ``Retry-After``; it is honoured when present.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from handlers.base import (
    AuthError,
    ConflictError,
    MissingPermission,
    PermanentError,
    TransientError,
    http,
    retry_after_seconds,
)

SQUARE_VERSION = "2025-08-20"
BASE_URLS = {
    "production": "https://connect.squareup.com",
    "sandbox": "https://connect.squareupsandbox.com",
}
DEFAULT_TIMEOUT = (5.0, 20.0)
CONFLICT_CODES = frozenset({"VERSION_MISMATCH", "CONFLICT"})


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
        response = http(credentials).request(
            method, url, json=body, headers=headers, timeout=_timeout(credentials)
        )
    except (
        requests.Timeout,
        requests.ConnectionError,
        # An answer cut off mid-body: Square may have done it; every write Rapport makes
        # is safe to repeat (a replaced block, idempotency keys).
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ) as error:
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


def _segment(value: str) -> str:
    # Ids come from webhooks; quoting keeps one from reaching another path.
    return quote(str(value), safe="")


def _key(prefix: str, *parts: Any, size: int = 32) -> str:
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8"))
    return prefix + digest.hexdigest()[:size]
