"""The HTTP layer for Cliniko's API: the shard's host, Basic authentication with the
clinic's API key, the User-Agent Cliniko asks for, explicit timeouts, and Cliniko's
answers turned into Rapport's named errors (handlers.base).

Every call goes through :func:`handlers.base.http` (the caller counts each clinic's
calls through it).

Cliniko facts this module relies on, and where they are documented (Cliniko's API
reference, https://docs.api.cliniko.com/ — "Introduction", "Base URL and Shards" and
"Sharding" — and its predecessor on GitHub, https://github.com/redguava/cliniko-api,
``readme.md``, which says it is no longer updated since 15 November 2022):

- Base URL ``https://api.{shard}.cliniko.com/v1``; the shard is the API key's suffix after
  its last dash (``…-au2`` → ``au2``); a key without one belongs to ``au1``. Known shards
  ``au1``–``au4``, ``ca1``, ``uk1``, ``uk2``, ``eu1``; integrators are told to validate the
  suffix against them or ``/\\w{2}\\d{1,2}/``. A shard not matching the account's "will not
  work". https://docs.api.cliniko.com/guides/urls, https://docs.api.cliniko.com/guides/sharding
- HTTP Basic authentication, the API key (with or without its suffix) as the user name and
  no password: ``"Basic " + base64(api_key + ":")``. HTTPS only, TLS 1.2 at least.
- Every request sends ``User-Agent: APP_VENDOR_NAME (APP_VENDOR_EMAIL)``, a contact email
  Cliniko can reach; "requests that do not include a User-Agent that contains a name and
  valid contact email" may be blocked. ``Accept: application/json`` is to be sent too.
- 200 requests a minute per user; beyond, 429 with ``X-RateLimit-Reset``: the UNIX time
  (seconds, UTC) at which the limit resets. (The limit has changed before: 120 a minute,
  then 60 a minute and 1000 a day in 2018, https://github.com/redguava/cliniko-api/pull/235;
  the current reference states no daily limit.)
- A 403 comes from the security role of the key's user: Cliniko's developers answer a 403
  on patients with "double check the security role of the user associated with the api
  key". https://github.com/redguava/cliniko-api/issues/143
- 2xx success, 4xx "an error resulting from the provided information", 5xx Cliniko's.

Not confirmed, and handled defensively:

- The status Cliniko answers a request without a conforming User-Agent with. Rapport never
  sends one: no call is made until ``RAPPORT_CLINIKO_CONTACT_EMAIL`` holds an address.
- The status for a key sent to the wrong shard (taken as 401, like any refused key). A 403
  is read as a missing permission: the clinic gives the key of a user who may see and edit
  patients and appointments.
- Whether a 429 carries ``Retry-After``: honoured when present, else ``X-RateLimit-Reset``
  measured against the answer's own ``Date`` (both from Cliniko's clock).
- The shape of error bodies: a ``message`` or ``errors`` member is quoted when present.
- Conflicts: Cliniko documents none (no versions, no ``If-Match``); a 409 would be one.
- The 301 the old unsharded host may answer: redirects are not followed (the API key is
  never sent to a host Rapport did not choose) and read as a permanent error.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
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

HOST_TEMPLATE = "https://api.{shard}.cliniko.com/v1"
DEFAULT_SHARD = "au1"
KNOWN_SHARDS = frozenset({"au1", "au2", "au3", "au4", "ca1", "uk1", "uk2", "eu1"})
SHARD = re.compile(r"^[A-Za-z]{2}\d{1,2}$")
APP_NAME = "Rapport"
CONTACT_EMAIL = re.compile(r"^[^\s()<>@,;:\"]+@[^\s()<>@,;:\"]+\.[A-Za-z]{2,}$")
DEFAULT_TIMEOUT = (5.0, 20.0)
PER_PAGE = 100  # the largest page Cliniko serves


class InvalidKey(ValueError):
    """An API key Rapport cannot route to a shard."""


class NotFound(PermanentError):
    """Cliniko has no such record (or no longer shows it)."""


def split_key(api_key: str) -> tuple[str, str]:
    """``(key, shard)`` for an API key as Cliniko hands it out.

    Follows Cliniko's sharding guide: no dash, the ``au1`` shard; otherwise what follows the
    last dash must look like a shard (two letters, one or two digits).
    """
    key = (api_key or "").strip()
    if not key:
        raise InvalidKey("the API key is empty")
    if "-" not in key:
        return key, DEFAULT_SHARD
    body, _, suffix = key.rpartition("-")
    if not body or not SHARD.match(suffix):
        raise InvalidKey(
            f"the API key ends in “-{suffix}”, which is not a Cliniko shard (such as "
            f"-au1 or -uk1); copy the whole key from Cliniko")
    return key, suffix.lower()


def shard_of(credentials: Mapping[str, Any]) -> str:
    try:
        return split_key(credentials.get("api_key") or "")[1]
    except InvalidKey as error:
        raise AuthError(f"Cliniko API key: {error}") from None


def base_url(credentials: Mapping[str, Any]) -> str:
    """The API's base URL for the clinic's shard; ``base_url`` (the installation's
    ``RAPPORT_CLINIKO_BASE_URL``, for a stand-in) replaces the host, ``{shard}`` in it
    standing for the key's shard."""
    shard = shard_of(credentials)
    template = credentials.get("base_url") or HOST_TEMPLATE
    return str(template).replace("{shard}", shard).rstrip("/")


def user_agent(credentials: Mapping[str, Any]) -> str:
    email = (credentials.get("contact_email") or "").strip()
    if not CONTACT_EMAIL.match(email):
        raise PermanentError(
            "RAPPORT_CLINIKO_CONTACT_EMAIL must be set to an email address Cliniko can reach "
            "the people running this Rapport at: Cliniko blocks requests whose User-Agent "
            "has none")
    return f"{APP_NAME} ({email})"


def call(
    credentials: Mapping[str, Any],
    method: str,
    path: str,
    *,
    params: list[tuple[str, str]] | None = None,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One request to Cliniko; the JSON object it answered (``{}`` for no content)."""
    api_key = credentials.get("api_key")
    if not api_key:
        raise AuthError("no Cliniko API key is configured for this clinic")
    token = base64.b64encode(f"{api_key}:".encode()).decode("ascii")
    headers = {
        "Authorization": f"Basic {token}",
        "Accept": "application/json",
        "User-Agent": user_agent(credentials),
    }
    url = base_url(credentials) + path
    try:
        response = http(credentials).request(
            method, url, params=params, json=body, headers=headers,
            timeout=timeout(credentials), allow_redirects=False)
    except (
        requests.Timeout,
        requests.ConnectionError,
        # An answer cut off mid-body: every write Rapport makes is safe to repeat.
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ) as error:
        raise TransientError(f"Cliniko {method} {path}: {error.__class__.__name__}") from error
    except requests.RequestException as error:
        raise PermanentError(f"Cliniko {method} {path}: {error}") from error
    return answer(response, method, path)


def answer(response: requests.Response, method: str, path: str) -> dict[str, Any]:
    status = response.status_code
    if 200 <= status < 300:
        if status == 204 or not response.content:
            return {}
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise TransientError(f"Cliniko {method} {path}: {status} without a JSON object")
        return payload
    message = f"Cliniko {method} {path}: {status} {_detail(response)}"
    if status == 401:
        raise AuthError(message)
    if status == 429:
        raise TransientError(message, _retry_after(response))
    if status == 408 or status >= 500:
        raise TransientError(message, retry_after_seconds(response.headers.get("Retry-After")))
    if status == 403:
        raise MissingPermission(message)
    if status == 404:
        raise NotFound(message)
    if status == 409:
        raise ConflictError(message)
    raise PermanentError(message)


def timeout(credentials: Mapping[str, Any]) -> float | tuple[float, float]:
    value = credentials.get("timeout")
    return float(value) if value else DEFAULT_TIMEOUT


def segment(value: Any) -> str:
    # Ids come from Cliniko's own records; quoting keeps one from reaching another path.
    return quote(str(value), safe="")


def _retry_after(response: requests.Response) -> float | None:
    given = retry_after_seconds(response.headers.get("Retry-After"))
    if given is not None:
        return given
    reset = response.headers.get("X-RateLimit-Reset")
    try:
        reset_at = float(reset) if reset else None
    except ValueError:
        reset_at = None
    if reset_at is None:
        return None
    return max(0.0, reset_at - _server_now(response).timestamp())


def _server_now(response: requests.Response) -> datetime:
    try:
        when = parsedate_to_datetime(response.headers.get("Date") or "")
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _detail(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for name in ("message", "errors", "error"):
            if payload.get(name):
                return str(payload[name])[:300]
    return response.reason or "no detail"
