"""Connecting a Square seller through OAuth: the "Connect Square" link, the code
exchange and the access token's refresh.

Square facts this module relies on, and where they are documented:

- OAuth: ``/oauth2/authorize?client_id=…&scope=A+B&session=false&state=…`` on
  connect.squareup.com or connect.squareupsandbox.com; ``POST /oauth2/token`` with the
  code-flow secret; access tokens last 30 days, the code-flow refresh token never expires
  and comes back unchanged; Square recommends refreshing every 7 days or less.
  https://developer.squareup.com/reference/square/o-auth/authorize,
  https://developer.squareup.com/docs/oauth-api/create-urls-for-square-authorization,
  https://developer.squareup.com/docs/oauth-api/refresh-revoke-limit-scope,
  https://developer.squareup.com/reference/square/objects/ObtainTokenResponse

Not confirmed, and handled defensively:

- Square's answer to a revoked refresh token at ``/oauth2/token``. Any refusal that is
  not worth retrying (401, 400, other 4xx) is taken to mean the clinic must connect
  again; the retired renew endpoint answered a revoked token with 400 "cannot renew
  revoked token" (https://github.com/square/connect-ruby-sdk/issues/73).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from handlers.base import AuthError, PermanentError, parse_instant
from handlers.square.api import _base_url, _call

SCOPES = (
    "APPOINTMENTS_READ",
    "APPOINTMENTS_ALL_READ",
    # seller_note on the next booking is an UpdateBooking at seller level
    "APPOINTMENTS_WRITE",
    "APPOINTMENTS_ALL_WRITE",
    "CUSTOMERS_READ",
    "CUSTOMERS_WRITE",
    # the main location's time zone and language, for a clinic that gave none
    "MERCHANT_PROFILE_READ",
)
# Square recommends refreshing every 7 days or less; access tokens last 30 days.
TOKEN_LIFETIME = timedelta(days=30)
REFRESH_EVERY = timedelta(days=7)


def authorize_url(
    *,
    application_id: str,
    state: str,
    environment: str = "production",
    redirect_uri: str | None = None,
    base_url: str | None = None,
) -> str:
    """The "Connect Square" link a clinic admin opens to grant Rapport its scopes."""
    params = {
        "client_id": application_id,
        "scope": " ".join(SCOPES),
        # Makes the admin sign in, so the clinic's own Square account is the one connected.
        "session": "false",
        "state": state,
    }
    if redirect_uri:
        params["redirect_uri"] = redirect_uri
    root = _base_url({"base_url": base_url, "environment": environment})
    return f"{root}/oauth2/authorize?{urlencode(params)}"


def exchange_code(
    *,
    application_id: str,
    application_secret: str,
    code: str,
    environment: str = "production",
    base_url: str | None = None,
    redirect_uri: str | None = None,
) -> dict[str, Any]:
    body = {
        "client_id": application_id,
        "client_secret": application_secret,
        "grant_type": "authorization_code",
        "code": code,
    }
    if redirect_uri:
        body["redirect_uri"] = redirect_uri
    where = {"base_url": base_url, "environment": environment}
    return _tokens(_call(where, "POST", "/oauth2/token", body=body, auth=False))


def refresh_access_token(
    credentials: Mapping[str, Any], *, application_id: str, application_secret: str
) -> dict[str, Any]:
    refresh_token = credentials.get("refresh_token")
    if not refresh_token:
        raise AuthError("no Square refresh token is stored: the clinic must reconnect")
    body = {
        "client_id": application_id,
        "client_secret": application_secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    try:
        answer = _call(credentials, "POST", "/oauth2/token", body=body, auth=False)
    except PermanentError as error:
        # Only connecting again gives Rapport a token that Square will renew.
        raise AuthError(f"Square would not renew the access token: {error}") from error
    tokens = _tokens(answer)
    tokens["refresh_token"] = tokens.get("refresh_token") or refresh_token
    return tokens


def _expiry(credentials: Mapping[str, Any]) -> datetime | None:
    expires_at = credentials.get("expires_at")
    return parse_instant(expires_at) if expires_at else None


def token_issued_at(credentials: Mapping[str, Any]) -> datetime | None:
    """When Square issued the stored OAuth access token (30 days before it expires);
    None for a personal access token."""
    expires = _expiry(credentials)
    return expires - TOKEN_LIFETIME if expires else None


def needs_refresh(credentials: Mapping[str, Any], now: datetime) -> bool:
    """True once the access token is a week old (Square: refresh every 7 days or less),
    or when its expiry cannot be read.

    Personal access tokens (manual set-up) carry no ``expires_at`` and never need it.
    """
    if not credentials.get("expires_at"):
        return False
    expires = _expiry(credentials)
    return expires is None or now >= expires - (TOKEN_LIFETIME - REFRESH_EVERY)


def _tokens(answer: Mapping[str, Any]) -> dict[str, Any]:
    if not answer.get("access_token"):
        raise PermanentError("Square's token answer has no access_token")
    fields_ = ("access_token", "refresh_token", "expires_at", "merchant_id", "token_type")
    return {name: answer.get(name) for name in fields_}
