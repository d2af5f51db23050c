"""Installing Rapport for a Square seller (see docs/platforms/square.md).

OAuth: the admin opens ``/connect/square/<clinic key>``, Square asks the seller to allow
Rapport's scopes and sends them back to ``/connect/square/callback`` with a code and
the ``state`` Rapport gave; the code is exchanged for tokens, sealed at rest, and the
"Rapport alliance" customer attribute is defined. Square ties webhook subscriptions to
the application, not to a seller, so one subscription (``booking.created``,
``booking.updated``, ``oauth.authorization.revoked``) to ``<base URL>/webhooks/square``
serves every connected seller: Rapport creates it through the Webhook Subscriptions API
with the application's personal access token (``RAPPORT_SQUARE_ACCESS_TOKEN``) the
first time a seller connects, and stores its signature key. Events are routed to
clinics by merchant id.

The Connect link carries no login: the clinic key in it is the capability. So what it
can do is kept small. It serves OAuth-mode clinics only (a manual-mode clinic keeps its
own subscription's signature keys and notification URL, and renews its token with
``rapport clinic square KEY --access-token NEW``); once a clinic is connected to a Square
merchant, only that same merchant can connect it again; and a reconnection replaces the
tokens while keeping every other stored credential.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from handlers import square
from handlers.base import AdapterError
from plugin import accounts, clinics, crypto, storage, writeback
from plugin.models import Clinic, PlatformWebhook

log = logging.getLogger(__name__)

STATE_MAX_AGE = 600
NONCE_COOKIE = "rapport_square_oauth"


class SquareInstallError(RuntimeError):
    """The install cannot go on; the message says what to do."""


class ManualModeClinic(SquareInstallError):
    """The clinic is in manual mode: the Connect flow does not apply to it."""


def notification_url() -> str:
    return current_app.config["SQUARE_NOTIFICATION_URL"] or (
        f"{current_app.config['BASE_URL']}/webhooks/square")


def redirect_uri() -> str:
    return f"{current_app.config['BASE_URL']}/connect/square/callback"


def connect_url(clinic: Clinic) -> str:
    return f"{current_app.config['BASE_URL']}/connect/square/{clinic.key}"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="square-oauth")


def _application() -> tuple[str, str]:
    config = current_app.config
    if not (config["SQUARE_APPLICATION_ID"] and config["SQUARE_APPLICATION_SECRET"]):
        raise SquareInstallError(
            "Square is not set up on this Rapport: set RAPPORT_SQUARE_APPLICATION_ID and "
            "RAPPORT_SQUARE_APPLICATION_SECRET (Square Developer Console → your application "
            "→ OAuth)")
    return config["SQUARE_APPLICATION_ID"], config["SQUARE_APPLICATION_SECRET"]


def manual_mode_refusal(clinic: Clinic) -> str | None:
    """Why the Connect flow does not apply to this clinic, or None when it does."""
    if clinics.credentials(clinic).get("mode") == "oauth":
        return None
    return (f"{clinic.name} is set up in manual mode, with its own Square application and "
            "webhook subscription, so it is not connected through this link (doing so "
            "would drop its subscription's signature key). To give Rapport a new access "
            f"token, run: rapport clinic square {clinic.key} --access-token NEW")


def start(clinic: Clinic) -> tuple[str, str]:
    """Where to send the admin, and the nonce to keep in their browser."""
    refusal = manual_mode_refusal(clinic)
    if refusal:
        raise ManualModeClinic(refusal)
    application_id, _ = _application()
    nonce = secrets.token_urlsafe(16)
    state = _serializer().dumps({"clinic": clinic.key, "nonce": nonce})
    settings = accounts.square_settings()
    url = square.authorize_url(application_id=application_id, state=state,
                               environment=settings["environment"],
                               base_url=settings["base_url"], redirect_uri=redirect_uri())
    return url, nonce


def finish(*, code: str, state: str, nonce: str | None) -> Clinic:
    """Exchange the code, store the tokens, define the attribute, make sure events come."""
    try:
        claims = _serializer().loads(state, max_age=STATE_MAX_AGE)
    except SignatureExpired:
        raise SquareInstallError("this Square sign-in took too long; open the connect link again")
    except BadSignature:
        raise SquareInstallError("this link did not come from Rapport; open the connect link again")
    if not nonce or not secrets.compare_digest(nonce, claims.get("nonce", "")):
        raise SquareInstallError(
            "this Square sign-in was started in another browser; open the connect link again here")
    with storage.session() as db:
        _connectable(clinics.by_key(db, claims["clinic"]))
    application_id, application_secret = _application()
    settings = accounts.square_settings()
    tokens = square.exchange_code(
        application_id=application_id, application_secret=application_secret, code=code,
        environment=settings["environment"], base_url=settings["base_url"],
        redirect_uri=redirect_uri())
    merchant = tokens.get("merchant_id")
    with storage.session() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.key == claims["clinic"])
                           .with_for_update())
        _connectable(clinic)
        if clinic.account_id and merchant != clinic.account_id:
            # Someone signed in to Square with another account: connecting it would send
            # this clinic's check-ins and notes to another business's clients.
            raise SquareInstallError(
                f"{clinic.name} is connected to the Square account {clinic.account_id}, "
                f"but this sign-in was for {merchant or 'another account'}. Nothing was "
                f"changed. Sign in to Square as the owner of {clinic.account_id} and open "
                "the connect link again.")
        other = db.scalar(select(Clinic).where(Clinic.platform == "square",
                                               Clinic.account_id == merchant,
                                               Clinic.id != clinic.id))
        if merchant and other is not None:
            raise SquareInstallError(
                f"this Square account is already connected to the clinic {other.name!r}")
        # The new tokens replace the old ones; anything else stored stays.
        fresh = {name: value for name, value in tokens.items() if value is not None}
        clinics.store_credentials(clinic, {**clinics.credentials(clinic), **fresh,
                                           "mode": "oauth"})
        clinic.account_id = merchant
        clinic_id = clinic.id
    square.ensure_attribute_definition({**tokens, **settings})
    adopt_business_locale(clinic_id, {**tokens, **settings})
    ensure_application_webhook()
    with storage.session() as db:
        clinic = db.get(Clinic, clinic_id)
        clinics.mark_connected(clinic)
    writeback.resume(clinic_id)
    return clinic


def adopt_business_locale(clinic_id: int, credentials: dict[str, Any]) -> None:
    """Take the time zone and language the admin left out (``clinics.FROM_PLATFORM``) from
    the seller's main Square location. A Square that cannot say (an older grant without
    MERCHANT_PROFILE_READ, a location without them) leaves the defaults, and they are
    asked for again at the next connection."""
    with storage.session() as db:
        pending = clinics.from_platform(db.get(Clinic, clinic_id))
    if not pending:
        return
    try:
        found = square.business_locale(credentials)
    except AdapterError as error:
        log.warning("square.locale-unknown: clinic %s keeps its default %s: %s", clinic_id,
                    " and ".join(pending), error)
        return
    with storage.session() as db:
        clinic = db.get(Clinic, clinic_id)
        clinics.adopt_locale(clinic, timezone=found.timezone, language=found.language)


def _connectable(clinic: Clinic | None) -> None:
    if clinic is None or clinic.platform != "square":
        raise SquareInstallError("this clinic no longer exists in Rapport")
    refusal = manual_mode_refusal(clinic)
    if refusal:
        raise ManualModeClinic(refusal)


def application_webhook() -> dict[str, Any] | None:
    """What verifies events on ``/webhooks/square``: signature keys and the signed URL."""
    url = notification_url()
    with storage.session() as db:
        row = db.scalar(select(PlatformWebhook).where(
            PlatformWebhook.platform == "square",
            PlatformWebhook.environment == current_app.config["SQUARE_ENVIRONMENT"],
            PlatformWebhook.notification_url == url))
        stored = crypto.unseal(row.credentials) if row else {}
    # The configured keys are a list (plugin/config.py), several while rotating.
    keys = [key for key in (stored.get("signature_key"),
                            *current_app.config["SQUARE_WEBHOOK_SIGNATURE_KEY"]) if key]
    return {"signature_keys": keys, "notification_url": url} if keys else None


def ensure_application_webhook() -> dict[str, Any]:
    """The application's subscription, created through Square's API on first need."""
    existing = application_webhook()
    if existing:
        return existing
    token = current_app.config["SQUARE_ACCESS_TOKEN"]
    if not token:
        raise SquareInstallError(
            "Rapport needs a Square webhook subscription to hear about bookings: set "
            "RAPPORT_SQUARE_ACCESS_TOKEN to the application's personal access token so "
            "Rapport creates it, or create it in the Developer Console (booking.created, "
            f"booking.updated, oauth.authorization.revoked, notification URL "
            f"{notification_url()}) and set "
            "RAPPORT_SQUARE_WEBHOOK_SIGNATURE_KEY to its signature key")
    created = square.subscribe({"access_token": token, **accounts.square_settings()},
                               notification_url())
    with storage.session() as db:
        db.add(PlatformWebhook(platform="square",
                               environment=current_app.config["SQUARE_ENVIRONMENT"],
                               notification_url=notification_url(),
                               subscription_id=created.get("subscription_id"),
                               credentials=crypto.seal(
                                   {"signature_key": created["signature_key"]})))
    return application_webhook()


def note_revocation(clinic_id: int, revoked_at: datetime | None) -> bool:
    """The seller revoked Rapport's access: the clinic needs reconnecting, unless the
    revocation is older than the clinic's current token (Square redelivers events for
    days, and the seller may have connected again since). True when it was noted."""
    from handlers.base import AuthError

    with storage.session() as db:
        values = clinics.credentials(db.get(Clinic, clinic_id))
    issued = square.token_issued_at(values)
    if revoked_at is not None and issued is not None and revoked_at < issued:
        return False
    clinics.platform_refused(clinic_id, AuthError(
        "the seller disconnected Rapport in Square (oauth.authorization.revoked)"))
    return True


def manual_key(notification: str) -> str:
    """The clinic key a seller chose in the notification URL they registered."""
    path = urlparse(notification).path.rstrip("/")
    prefix = "/webhooks/square/"
    key = path[len(prefix):] if path.startswith(prefix) else ""
    if not key or "/" in key or len(key) > 64 or key.startswith("-"):
        suggestion = secrets.token_hex(8)
        raise SquareInstallError(
            "the notification URL must end in /webhooks/square/<clinic key>, the key being "
            f"any name you choose: register {current_app.config['BASE_URL']}/webhooks/square/"
            f"{suggestion} in the Developer Console and pass that URL here")
    return key
