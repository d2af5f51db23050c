"""The HTTP layer for Mindbody: the Public API v6 (``Api-Key`` and ``SiteId`` headers, a
staff user token for what acts on the business) and the Webhooks API (its own
``API-Key``), every call with an explicit timeout, and Mindbody's answers turned into
Rapport's named errors (handlers.base).

Mindbody facts this module relies on, and where they are documented:

- Public API v6 host ``https://api.mindbodyonline.com``, paths ``/public/v6/...``; every
  call carries the developer's ``Api-Key`` and the business's ``SiteId``; calls acting as
  staff add a user token from ``POST /public/v6/usertoken/issue`` (``Username``,
  ``Password`` → ``AccessToken``, ``Expires`` in UTC), sent in ``Authorization``.
  https://developers.mindbodyonline.com/PublicDocumentation/V6, and the OpenAPI
  description generated from Mindbody's own SDKs (github.com/mindbody/Mindbody-API-SDKs):
  https://github.com/api-evangelist/mindbody/blob/main/openapi/mindbody-user-token-api-openapi.yml
- Webhooks API host ``https://push-api.mindbodyonline.com``, paths ``/api/v1/...``, with
  an ``API-Key`` header of its own: "Webhooks API Key is different than Public API Key";
  a call without it is answered 401 ``{"errors": [{"errorCode", "errorType",
  "errorMessage"}]}``. https://developers.mindbodyonline.com/WebhooksDocumentation,
  https://www.npmjs.com/package/mindbody-sdk-forked
- Public API errors come as ``{"Error": {"Message", "Code"}}`` (codes such as
  ``DeniedAccess``, ``InvalidLoginCredentials``, ``ClientNotFound``), as the
  ``mindbody-api-v6`` client reads them:
  https://app.unpkg.com/mindbody-api-v6@0.3.1/files/dist/cjs/index.cjs

Not confirmed, and handled defensively:

- Mindbody's HTTP status for a refused site (not activated, or access withdrawn) and for
  a staff member without a permission: 401 is read as :class:`AuthError` and 403 as
  :class:`MissingPermission`, both of which ask the clinic to reconnect.
- Whether a throttled call is answered 429 with ``Retry-After`` (Mindbody bills calls
  beyond an allowance rather than publishing a rate limit): any 429, 408 or 5xx is a
  :class:`TransientError`, honouring ``Retry-After`` when present.
- How long a user token lives: the ``Expires`` Mindbody returns is trusted, and a call
  refused with 401 while using a kept token issues a fresh one once before giving up.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from handlers.base import (
    AuthError,
    MissingPermission,
    PermanentError,
    TransientError,
    http,
    parse_instant,
    retry_after_seconds,
)

PUBLIC_API = "https://api.mindbodyonline.com"
WEBHOOKS_API = "https://push-api.mindbodyonline.com"
DEFAULT_TIMEOUT = (5.0, 20.0)
# A kept token is renewed this long before Mindbody says it expires.
TOKEN_MARGIN = timedelta(hours=1)

_tokens: dict[tuple[str, ...], tuple[str, datetime]] = {}
_tokens_lock = threading.Lock()


class NotFound(PermanentError):
    """Mindbody has no such record (404, or an empty answer to a lookup by id)."""


def public_call(credentials: Mapping[str, Any], method: str, path: str, *,
                params: Mapping[str, Any] | None = None,
                body: Mapping[str, Any] | None = None,
                staff: bool = True) -> dict[str, Any]:
    """Call ``/public/v6/<path>`` for the clinic's site; ``staff`` adds a user token."""
    site_id = credentials.get("site_id")
    api_key = credentials.get("api_key")
    if not api_key:
        raise PermanentError("RAPPORT_MINDBODY_API_KEY is not set: Rapport cannot call Mindbody")
    if not site_id:
        raise AuthError("no Mindbody site id is stored for this clinic")
    headers = {"Api-Key": str(api_key), "SiteId": str(site_id), "Accept": "application/json"}
    url = _base(credentials, "base_url", PUBLIC_API) + "/public/v6/" + path
    if not staff:
        return _send(credentials, method, url, headers, params, body)
    token, kept = user_token(credentials)
    try:
        return _send(credentials, method, url, {**headers, "Authorization": token}, params, body)
    except AuthError:
        if not kept:
            raise
    # A kept token Mindbody no longer takes (revoked or expired early): one fresh try.
    forget_token(credentials)
    token, _kept = user_token(credentials, fresh=True)
    return _send(credentials, method, url, {**headers, "Authorization": token}, params, body)


def webhooks_call(settings: Mapping[str, Any], method: str, path: str, *,
                  body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Call the Webhooks API (``/api/v1/<path>``) with the application's webhooks key."""
    key = settings.get("webhooks_api_key")
    if not key:
        raise PermanentError("RAPPORT_MINDBODY_WEBHOOKS_API_KEY is not set")
    headers = {"API-Key": str(key), "Accept": "application/json"}
    url = _base(settings, "webhooks_base_url", WEBHOOKS_API) + "/api/v1/" + path
    return _send(settings, method, url, headers, None, body)


# --- the staff user token -------------------------------------------------------------


def login(credentials: Mapping[str, Any]) -> tuple[str, str]:
    """The username and password a user token is issued for: the clinic's own staff
    login when it gave one, else the application's source credentials, whose source
    name Mindbody takes with a leading underscore for the owner of an activated site."""
    username, password = credentials.get("staff_username"), credentials.get("staff_password")
    if username and password:
        return str(username), str(password)
    source, secret = credentials.get("source_name"), credentials.get("source_password")
    if source and secret:
        return "_" + str(source).lstrip("_"), str(secret)
    raise AuthError("no Mindbody login for this clinic: give --staff-username and "
                    "--staff-password, or set RAPPORT_MINDBODY_SOURCE_NAME and "
                    "RAPPORT_MINDBODY_SOURCE_PASSWORD")


def issue_token(credentials: Mapping[str, Any]) -> tuple[str, datetime]:
    """A new staff user token for the clinic's site, and when it expires (UTC)."""
    username, password = login(credentials)
    answer = public_call(credentials, "POST", "usertoken/issue",
                         body={"Username": username, "Password": password}, staff=False)
    token = answer.get("AccessToken")
    if not isinstance(token, str) or not token:
        raise TransientError("Mindbody issued no user token")
    expires = parse_instant(answer.get("Expires"))
    if expires is None:
        expires = datetime.now(UTC) + timedelta(hours=6)  # renewed early rather than late
    return token, expires.astimezone(UTC)


def user_token(credentials: Mapping[str, Any], *, fresh: bool = False) -> tuple[str, bool]:
    """A usable token and whether it was kept (the stored one, or this process's)."""
    now = datetime.now(UTC)
    if not fresh:
        stored = credentials.get("user_token")
        expires = parse_instant(credentials.get("user_token_expires"))
        if stored and expires is not None and expires - TOKEN_MARGIN > now:
            return str(stored), True
        with _tokens_lock:
            kept = _tokens.get(_token_key(credentials))
        if kept is not None and kept[1] - TOKEN_MARGIN > now:
            return kept[0], True
    token, expires = issue_token(credentials)
    with _tokens_lock:
        _tokens[_token_key(credentials)] = (token, expires)
    return token, False


def forget_tokens() -> None:
    """Forget every token this process keeps (a stand-in restarted on the same port)."""
    with _tokens_lock:
        _tokens.clear()


def forget_token(credentials: Mapping[str, Any]) -> None:
    with _tokens_lock:
        _tokens.pop(_token_key(credentials), None)


def _token_key(credentials: Mapping[str, Any]) -> tuple[str, ...]:
    username, _password = login(credentials)
    return (_base(credentials, "base_url", PUBLIC_API), str(credentials.get("api_key")),
            str(credentials.get("site_id")), username)


# --- sending and answers ---------------------------------------------------------------


def _send(options: Mapping[str, Any], method: str, url: str, headers: dict[str, str],
          params: Mapping[str, Any] | None, body: Mapping[str, Any] | None) -> dict[str, Any]:
    where = f"Mindbody {method} {url.split('//', 1)[-1].split('/', 1)[-1]}"
    try:
        response = http(options).request(method, url, params=params, json=body,
                                         headers=headers, timeout=_timeout(options))
    except (requests.Timeout, requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError) as error:
        # Every write Rapport makes replaces its own block: safe to send again.
        raise TransientError(f"{where}: {error.__class__.__name__}") from error
    except requests.RequestException as error:
        raise PermanentError(f"{where}: {error}") from error
    return _answer(response, where)


def _answer(response: requests.Response, where: str) -> dict[str, Any]:
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if 200 <= status < 300:
        if not isinstance(payload, dict):
            raise TransientError(f"{where}: {status} without a JSON object")
        return payload
    code, detail = _error_of(payload)
    message = f"{where}: {status} {code} {detail or response.reason or 'no detail'}".strip()
    if status == 401:
        raise AuthError(message)
    if status == 429 or status == 408 or status >= 500:
        raise TransientError(message, retry_after_seconds(response.headers.get("Retry-After")))
    if status == 403:
        raise MissingPermission(message)
    if status == 404 or code.endswith("NotFound"):
        raise NotFound(message)
    raise PermanentError(message)


def _error_of(payload: Any) -> tuple[str, str]:
    """(code, message) from either API's error shape."""
    if not isinstance(payload, dict):
        return "", ""
    error = payload.get("Error")
    if isinstance(error, dict):
        return str(error.get("Code") or ""), str(error.get("Message") or "")
    errors = payload.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return str(first.get("errorType") or first.get("errorCode") or ""), str(
            first.get("errorMessage") or "")
    return "", ""


def _base(options: Mapping[str, Any], name: str, default: str) -> str:
    return str(options.get(name) or default).rstrip("/")


def _timeout(options: Mapping[str, Any]) -> float | tuple[float, float]:
    value = options.get("timeout")
    return float(value) if value else DEFAULT_TIMEOUT


def segment(value: Any) -> str:
    # Ids come from webhooks; quoting keeps one from reaching another path.
    return quote(str(value), safe="")
