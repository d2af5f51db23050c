"""Adding a clinic, and changing how it is connected, whatever its platform.

What the admin gives is the platform's declared ``connect_fields`` (``rapport clinic
add`` options, the console's form); the platform turns them into credentials
(``Platform.credentials_from``), which are tried with it before anything is saved
(``Platform.prepare_account``) unless the clinic connects later through the platform's
sign-in. Where the platform lets Rapport register the clinic's webhook
(``Capabilities.subscription`` with ``Webhooks.PER_CLINIC``), Rapport does; a clinic whose
events come on the application's subscription (``Webhooks.PER_APPLICATION``) is routed by
its platform account (``Platform.account_id_of``), and that subscription is made sure of.
When either cannot be done, nothing is saved and the admin is told why. The admin gets
back what to copy: the clinic key, its webhook URL, secrets, the connect link, and whether
Rapport registered the webhook itself (``webhook_registered``) or what to paste where.

Clinics are not removed today; when they are, a per-clinic subscription Rapport
registered (``webhook_ids`` and the like in its credentials) is to be ended with it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select

import handlers
from handlers.base import AdapterError, Connection, ConnectProblem, Platform, Webhooks
from plugin.clinics import callbacks, records
from plugin.clinics.oauth import adopt_business_locale, connect_url
from plugin.clinics.platforms import call_context, platform_of, settings_of
from plugin.clinics.subscriptions import ensure_application_webhook, notification_url
from plugin.store import database
from plugin.store.models import Clinic

log = logging.getLogger(__name__)


class InstallError(ValueError):
    """The clinic cannot be added or changed as asked; the message says what to do."""


@dataclass(frozen=True)
class Added:
    """A clinic just added: what the admin copies (``shown``, by key, in order), the
    labels to print them under, and what to do next."""

    clinic_id: int
    shown: dict[str, Any]
    labels: list[tuple[str, str]]
    next_steps: list[str]
    from_platform: list[str]


def _tried(platform: Platform, credentials: dict[str, Any]) -> None:
    """Try the credentials with the platform, so a wrong key is said now, not by a first
    failed visit."""
    calling = {**credentials, **call_context(platform)}
    try:
        platform.prepare_account(calling)
    except AdapterError as error:
        raise InstallError(platform.explain_refusal(error, calling)) from None


def add(*, name: str, platform_name: str, given: dict[str, Any], timezone: str | None,
        language: str | None) -> Added:
    """Add a clinic on ``platform_name`` with the connect fields ``given``."""
    try:
        platform = handlers.platform(platform_name)
    except handlers.UnknownPlatform as error:
        raise InstallError(str(error)) from None
    try:
        credentials = platform.credentials_from(given, settings_of(platform))
        key = platform.clinic_key(credentials)
        callbacks.checked_credentials(platform, credentials)
    except (ConnectProblem, callbacks.CallbackError) as error:
        raise InstallError(str(error)) from None
    with database.session() as db:
        if key and records.by_key(db, key) is not None:
            raise InstallError(f"a clinic with the key {key!r} exists already")
    key = key or secrets.token_hex(8)  # hex: a key never reads as a command-line option
    later = platform.connection_of(credentials) is Connection.OAUTH
    account = None if later else platform.account_id_of(credentials)
    if account:
        _account_free(platform, account)
    registered = None
    if not later:
        _tried(platform, credentials)
        registered = _application_webhook(platform, credentials)
        credentials, subscribed = _subscribed(platform, credentials, key)
        registered = registered or subscribed
    left_out = [field for field, value in (("timezone", timezone), ("language", language))
                if not value]
    try:
        with database.session() as db:
            created = records.create(
                db, name=name, platform=platform.name, timezone=timezone or "UTC",
                language=language or "en", credentials=credentials, key=key,
                status="not_connected" if later else "active",
                settings={records.FROM_PLATFORM: left_out}
                if platform.capabilities.business_locale and left_out else None)
            created.clinic.account_id = account
            clinic_id = created.clinic.id
    except records.ClinicError as error:
        raise InstallError(str(error)) from None
    if not later:
        adopt_business_locale(clinic_id, {**credentials, **call_context(platform)})
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        shown, labels = describe(clinic, credentials)
        shown.update(timezone=clinic.timezone, language=clinic.language)
        if registered is not None:
            shown["webhook_registered"] = registered
        return Added(clinic_id=clinic_id, shown=shown, labels=labels,
                     next_steps=platform.next_steps(credentials, clinic.key),
                     from_platform=records.from_platform(clinic))


def _account_free(platform: Platform, account: str) -> None:
    """One platform account, one clinic: its deliveries are routed by the account."""
    with database.session() as db:
        taken = db.scalar(select(Clinic).where(Clinic.platform == platform.name,
                                               Clinic.account_id == account))
        if taken is not None:
            raise InstallError(f"this {platform.title} account ({account}) is already "
                               f"connected to the clinic {taken.name!r} ({taken.key})")


def _application_webhook(platform: Platform, credentials: dict[str, Any]) -> bool | None:
    """For a clinic whose events come on the application's subscription: make sure that
    subscription exists (created through the platform's API the first time). True when
    Rapport holds it; None when the clinic's events do not come that way."""
    if platform.webhooks_of(credentials) is not Webhooks.PER_APPLICATION:
        return None
    try:
        ensure_application_webhook(platform)
    except ConnectProblem as problem:
        raise InstallError(f"{problem}; nothing was saved") from None
    except AdapterError as error:
        raise InstallError(f"{platform.title} did not create Rapport's webhook subscription "
                           f"({error}); nothing was saved, try again later") from None
    return True


def _subscribed(platform: Platform, credentials: dict[str, Any],
                key: str) -> tuple[dict[str, Any], bool | None]:
    """Register the clinic's webhook in its account where the platform lets Rapport: the
    credentials with what the subscription gave, and whether it registered one (False: the
    admin pastes the URL, ``Platform.next_steps`` says where; None: no URL of its own).
    A registration that fails saves nothing and says why."""
    if platform.webhooks_of(credentials) is not Webhooks.PER_CLINIC:
        return credentials, None
    if not (platform.capabilities.subscription
            and platform.capabilities.webhooks == {Webhooks.PER_CLINIC}):
        # No API for it, or the one it has registers the application's subscription (a
        # clinic on such a platform that takes its own URL set that up by hand).
        return credentials, False
    url = f"{current_app.config['BASE_URL']}/webhooks/{platform.name}/{key}"
    calling = {**credentials, **call_context(platform)}
    try:
        added = platform.subscribe_clinic(calling, url)
    except ConnectProblem as problem:
        raise InstallError(f"{problem}; nothing was saved") from None
    except AdapterError as error:
        log.warning("connect.subscribe-failed: %s: %s", platform.name, error)
        raise InstallError(platform.explain_refusal(error, calling)) from None
    return {**credentials, **added}, bool(added)


def describe(clinic: Clinic, credentials: dict[str, Any]) -> tuple[dict, list[tuple[str, str]]]:
    """What the admin copies, and the labels to print it under."""
    platform = platform_of(clinic)
    shown: dict[str, Any] = {"key": clinic.key, "name": clinic.name,
                             "platform": clinic.platform}
    labels = [("Clinic key:", "key")]
    routed = platform.webhooks_of(credentials)
    if routed is Webhooks.PER_CLINIC:
        # A clinic whose events come on the application's subscription has no URL of its
        # own: its clinic URL would answer 401 to anything sent there.
        shown["webhook_url"] = records.webhook_url(clinic)
        labels.append(("Webhook URL:", "webhook_url"))
    elif (routed is Webhooks.PER_APPLICATION
          and platform.connection_of(credentials) is not Connection.OAUTH):
        # The application's own URL, which every connected account's events reach.
        shown["webhook_url"] = notification_url(platform)
        labels.append(("Events arrive at:", "webhook_url"))
    for item in platform.shown(credentials):
        shown[item.key] = item.value
        labels.append((item.label, item.key))
    if platform.connection_of(credentials) is Connection.OAUTH:
        shown["connect_url"] = connect_url(clinic)
        labels.append((f"Connect {platform.title} at:", "connect_url"))
    return shown, labels


@dataclass(frozen=True)
class Updated:
    summary: str
    reconnected: bool
    clinic_id: int


def update_credentials(key: str, platform_name: str, given: dict[str, Any]) -> Updated:
    """Change a clinic's credentials with the platform's ``update_fields`` (``rapport
    clinic <platform> KEY``). A new value of a field marked ``tried`` is tried with the
    platform before it replaces one that may still work, and reconnects the clinic."""
    platform = handlers.platform(platform_name)
    with database.session() as db:
        clinic = _clinic(db, key)
        if clinic.platform != platform.name:
            raise InstallError(
                f"{key} is a {clinic.platform} clinic; this command changes a "
                f"{platform.title} clinic's credentials (for a clinic whose own system signs "
                "its webhooks: `rapport clinic rotate-secret`)")
        current = records.credentials(clinic)
    try:
        values, summary = platform.updated_credentials(current, given)
    except ConnectProblem as error:
        raise InstallError(str(error)) from None
    tried = any(field.tried and given.get(field.name) for field in platform.update_fields)
    if tried:
        _tried(platform, values)
    with database.session() as db:
        clinic = _clinic(db, key)
        records.store_credentials(clinic, {**records.credentials(clinic), **values})
        reconnected = tried and clinic.status != "active"
        if reconnected:
            records.mark_connected(clinic)
        return Updated(summary=summary, reconnected=reconnected, clinic_id=clinic.id)


def rotate_secret(key: str, *, retire_old: bool) -> str | None:
    """A new inbound secret for a clinic whose own system signs its webhooks (the old
    ones keep working), or, with ``retire_old``, only the newest kept. The new secret,
    or None when retiring."""
    with database.session() as db:
        clinic = _clinic(db, key)
        platform = platform_of(clinic)
        if Connection.SHARED_SECRET not in platform.capabilities.connections:
            raise InstallError(f"{platform.title} signs its webhooks with keys of its own: "
                               "they are rotated in its own console")
        values = records.credentials(clinic)
        if retire_old:
            values["inbound_secrets"] = values["inbound_secrets"][-1:]
            records.store_credentials(clinic, values)
            return None
        secret = platform.new_secret()
        values["inbound_secrets"] = [*values["inbound_secrets"], secret]
        records.store_credentials(clinic, values)
        return secret


def _clinic(db, key: str) -> Clinic:
    clinic = records.by_key(db, key)
    if clinic is None:
        raise InstallError(f"no clinic with key {key!r}; `rapport clinic list` shows them")
    return clinic
