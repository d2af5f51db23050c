"""The HTTP layer for Acuity's API v1: authenticated calls with explicit timeouts, made
through :func:`handlers.base.http`, and Acuity's answers turned into Rapport's named errors.

Acuity facts this module relies on, and where they are documented:

- Base URL ``https://acuityscheduling.com/api/v1``; HTTP Basic auth with the numeric user
  ID as the user name and the API key as the password. Acuity's own SDK builds requests this
  way (AcuityScheduling/acuity-js, ``src/AcuityScheduling.js``: ``base``, ``/api/v1``,
  ``auth: {user: userId, pass: apiKey}``).
- Errors are JSON ``{"status_code", "error", "message"}``: 400 ``bad_request``, 401
  ``unauthorized`` (missing or wrong user ID / API key), 403 ``forbidden``, 404
  ``not_found``, 405, 429 ``too_many_requests`` ("Limit 10req/s and 20 concurrent
  connections" from an IP), 500.
  https://developers.acuityscheduling.com/reference/api-errors

Not confirmed, and handled defensively:

- Whether a 429 carries ``Retry-After`` (the errors page does not say): it is honoured when
  present; otherwise the caller's own backoff applies.
- 409 is not among Acuity's documented errors; should one come, it is a conflict.
- Answers that are not JSON (a proxy's error page) on a 2xx are transient, not trusted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from handlers.base import (
    AuthError,
    ConflictError,
    PermanentError,
    TransientError,
    http,
    retry_after_seconds,
)

BASE_URL = "https://acuityscheduling.com"
API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = (5.0, 20.0)
USER_AGENT = "Rapport (therapeutic-alliance check-ins)"
_ID = re.compile(r"[1-9][0-9]{0,19}")


class NotFound(PermanentError):
    """Acuity has no such record (404)."""


def call(
    credentials: Mapping[str, Any],
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
) -> Any:
    """``method`` ``/api/v1`` + ``path`` as the clinic's Acuity user; the decoded JSON."""
    user_id, api_key = credentials.get("user_id"), credentials.get("api_key")
    if not user_id or not api_key:
        raise AuthError("no Acuity user ID and API key are configured for this clinic")
    url = base_url(credentials) + API_PREFIX + path
    try:
        response = http(credentials).request(
            method,
            url,
            params=dict(params) if params else None,
            json=body,
            auth=(str(user_id), str(api_key)),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=timeout(credentials),
        )
    except (
        requests.Timeout,
        requests.ConnectionError,
        # An answer cut off mid-body: Acuity may have applied it; every write Rapport
        # makes replaces its own block, so repeating it is safe.
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ) as error:
        raise TransientError(f"Acuity {method} {path}: {error.__class__.__name__}") from error
    except requests.RequestException as error:
        raise PermanentError(f"Acuity {method} {path}: {error}") from error
    return answer(response, method, path)


def answer(response: requests.Response, method: str, path: str) -> Any:
    """The JSON of a 2xx answer, or the named error for any other."""
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if 200 <= status < 300:
        if payload is None and not response.content.strip():
            return None  # an empty answer (a deletion, say) says nothing more than its status
        if payload is None:
            raise TransientError(f"Acuity {method} {path}: {status} without a JSON body")
        return payload
    error = payload if isinstance(payload, dict) else {}
    code = str(error.get("error") or "")
    detail = str(error.get("message") or response.reason or "no detail")
    message = f"Acuity {method} {path}: {status} {code} {detail}".replace("  ", " ")
    if status == 401:
        raise AuthError(message)
    if status in (408, 429) or status >= 500:
        raise TransientError(message, retry_after_seconds(response.headers.get("Retry-After")))
    if status == 409:
        raise ConflictError(message)
    if status == 404:
        raise NotFound(message)
    raise PermanentError(message)


def base_url(credentials: Mapping[str, Any]) -> str:
    """Acuity's host, or the stand-in the installation names (``RAPPORT_ACUITY_BASE_URL``)."""
    override = credentials.get("base_url")
    return str(override).rstrip("/") if override else BASE_URL


def timeout(credentials: Mapping[str, Any]) -> float | tuple[float, float]:
    value = credentials.get("timeout")
    return float(value) if value else DEFAULT_TIMEOUT


def appointment_path(appointment_id: Any) -> str:
    """``/appointments/<id>``, refusing anything but a positive integer id (ids come from
    webhooks; nothing else may reach the path)."""
    value = str(appointment_id)
    if not _ID.fullmatch(value):
        raise PermanentError(f"{value[:40]!r} is not an Acuity appointment id")
    return f"/appointments/{quote(value, safe='')}"


def is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_ID.fullmatch(value))
