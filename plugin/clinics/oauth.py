"""Connecting a clinic through its platform's own sign-in (``Connection.OAUTH``).

The admin opens ``/connect/<platform>/<clinic key>``; the platform asks the account owner
to allow what Rapport needs and sends them back to ``/connect/<platform>/callback`` with
a code and the signed ``state`` Rapport gave; the code is exchanged for tokens, sealed at
rest, the account is prepared (``Platform.prepare_account``), the time zone and language
the admin left out are taken from the business, and the application's webhook
subscription is made sure of. Deliveries are routed by the account id the tokens name.

Once a clinic is connected to an account, only that same account can connect it again;
a reconnection replaces the tokens while keeping every other stored credential.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

import handlers
from handlers.base import AdapterError, Connection, Platform
from plugin.clinics import records
from plugin.clinics.platforms import call_context, platform_of, settings_of
from plugin.clinics.subscriptions import ensure_application_webhook
from plugin.store import database
from plugin.store.models import Clinic

log = logging.getLogger(__name__)

STATE_MAX_AGE = 600


class ConnectError(RuntimeError):
    """The connection cannot go on; the message says what to do."""


class NotConnectedThisWay(ConnectError):
    """The clinic is connected by hand: the sign-in does not apply to it."""


def nonce_cookie(platform: Platform) -> str:
    return f"rapport_{platform.name}_oauth"


def redirect_uri(platform: Platform) -> str:
    return f"{current_app.config['BASE_URL']}/connect/{platform.name}/callback"


def connect_url(clinic: Clinic) -> str:
    return f"{current_app.config['BASE_URL']}/connect/{clinic.platform}/{clinic.key}"


def _serializer(platform: Platform) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"],
                                  salt=f"{platform.name}-oauth")


def connected_by_hand(clinic: Clinic) -> str | None:
    """Why the sign-in does not apply to this clinic, or None when it does."""
    platform = platform_of(clinic)
    values = records.credentials(clinic)
    if platform.connection_of(values) is Connection.OAUTH:
        return None
    return (f"{clinic.name} is connected by hand, with credentials of its own, so it is not "
            f"connected through this link (doing so would drop them). To give Rapport new "
            f"ones: {platform.reconnect_hint(values, clinic.key)}")


def start(clinic: Clinic) -> tuple[str, str]:
    """Where to send the admin, and the nonce to keep in their browser."""
    refusal = connected_by_hand(clinic)
    if refusal:
        raise NotConnectedThisWay(refusal)
    platform = platform_of(clinic)
    settings = settings_of(platform)
    try:
        platform.check_oauth_settings(settings)
    except AdapterError as error:
        raise ConnectError(str(error)) from None
    nonce = secrets.token_urlsafe(16)
    state = _serializer(platform).dumps({"clinic": clinic.key, "nonce": nonce})
    return platform.authorize_url(settings, state=state,
                                  redirect_uri=redirect_uri(platform)), nonce


def finish(platform_name: str, *, code: str, state: str, nonce: str | None) -> Clinic:
    """Exchange the code, store the tokens, prepare the account, make sure events come."""
    platform = handlers.platform(platform_name)
    try:
        claims = _serializer(platform).loads(state, max_age=STATE_MAX_AGE)
    except SignatureExpired:
        raise ConnectError(f"this {platform.title} sign-in took too long; open the connect "
                           "link again")
    except BadSignature:
        raise ConnectError("this link did not come from Rapport; open the connect link again")
    if not nonce or not secrets.compare_digest(nonce, claims.get("nonce", "")):
        raise ConnectError(f"this {platform.title} sign-in was started in another browser; "
                           "open the connect link again here")
    with database.session() as db:
        _connectable(records.by_key(db, claims["clinic"]), platform)
    settings = settings_of(platform)
    try:
        platform.check_oauth_settings(settings)
    except AdapterError as error:
        raise ConnectError(str(error)) from None
    tokens = platform.exchange_code(settings, code=code, redirect_uri=redirect_uri(platform))
    account = platform.account_id_of(tokens)
    with database.session() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.key == claims["clinic"])
                           .with_for_update())
        _connectable(clinic, platform)
        if clinic.account_id and account != clinic.account_id:
            # Someone signed in with another account: connecting it would send this
            # clinic's check-ins and notes to another business's clients.
            raise ConnectError(
                f"{clinic.name} is connected to the {platform.title} account "
                f"{clinic.account_id}, but this sign-in was for {account or 'another account'}. "
                f"Nothing was changed. Sign in to {platform.title} as the owner of "
                f"{clinic.account_id} and open the connect link again.")
        other = db.scalar(select(Clinic).where(Clinic.platform == platform.name,
                                               Clinic.account_id == account,
                                               Clinic.id != clinic.id))
        if account and other is not None:
            raise ConnectError(f"this {platform.title} account is already connected to the "
                               f"clinic {other.name!r}")
        # The new tokens replace the old ones; anything else stored stays.
        fresh = {name: value for name, value in tokens.items() if value is not None}
        records.store_credentials(clinic, {**records.credentials(clinic), **fresh})
        clinic.account_id = account
        clinic_id = clinic.id
    calling = {**tokens, **call_context(platform)}
    platform.prepare_account(calling)
    adopt_business_locale(clinic_id, calling)
    ensure_application_webhook(platform)
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        records.mark_connected(clinic)
    return clinic


def adopt_business_locale(clinic_id: int, credentials: dict[str, Any]) -> None:
    """Take the time zone and language the admin left out (``records.FROM_PLATFORM``)
    from the business. A platform that cannot say (an older grant without the
    permission, a business without them) leaves the defaults, and they are asked for
    again at the next connection."""
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        pending, platform = records.from_platform(clinic), platform_of(clinic)
    if not pending or not platform.capabilities.business_locale:
        return
    try:
        found = platform.business_locale(credentials)
    except AdapterError as error:
        log.warning("platform.locale-unknown: clinic %s keeps its default %s: %s", clinic_id,
                    " and ".join(pending), error)
        return
    with database.session() as db:
        records.adopt_locale(db.get(Clinic, clinic_id), timezone=found.timezone,
                             language=found.language)


def _connectable(clinic: Clinic | None, platform: Platform) -> None:
    if clinic is None or clinic.platform != platform.name:
        raise ConnectError("this clinic no longer exists in Rapport")
    refusal = connected_by_hand(clinic)
    if refusal:
        raise NotConnectedThisWay(refusal)
