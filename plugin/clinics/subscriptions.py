"""Webhook subscriptions that belong to Rapport's application rather than to a clinic
(``Webhooks.PER_APPLICATION``), and what their deliveries tell about access.

Such a platform sends every connected account's events to one URL,
``<base URL>/webhooks/<platform>`` (or the one its settings name), signed with the
subscription's key. Rapport creates the subscription through the platform's API the
first time a clinic connects (``Capabilities.subscription``) and keeps its key sealed,
one per environment (a platform's sandbox and production subscriptions are separate);
keys of a subscription made by hand come from the installation's settings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from handlers.base import AuthError, ConnectProblem, Platform
from plugin.clinics import records
from plugin.clinics.platforms import platform_of, platform_refused, settings_of
from plugin.store import database, sealing
from plugin.store.models import Clinic, PlatformWebhook


def environment(platform: Platform) -> str:
    return settings_of(platform).get("environment") or "production"


def notification_url(platform: Platform) -> str:
    return (platform.application_notification_url(settings_of(platform))
            or f"{current_app.config['BASE_URL']}/webhooks/{platform.name}")


def application_webhook(platform: Platform) -> dict[str, Any] | None:
    """What verifies deliveries on ``/webhooks/<platform>``: the signature keys and the
    URL they were signed for; None when there is no key."""
    url = notification_url(platform)
    with database.session() as db:
        row = db.scalar(select(PlatformWebhook).where(
            PlatformWebhook.platform == platform.name,
            PlatformWebhook.environment == environment(platform),
            PlatformWebhook.notification_url == url))
        stored = sealing.unseal(row.credentials) if row else {}
    keys = [key for key in (stored.get("signature_key"),
                            *platform.application_signature_keys(settings_of(platform))) if key]
    return {"signature_keys": keys, "notification_url": url} if keys else None


def ensure_application_webhook(platform: Platform) -> dict[str, Any]:
    """The application's subscription, created through the platform's API on first need.
    Raises :class:`ConnectProblem` saying how to make one when Rapport cannot."""
    existing = application_webhook(platform)
    if existing:
        return existing
    if not platform.capabilities.subscription:
        raise ConnectProblem(f"create {platform.title}'s webhook subscription to "
                             f"{notification_url(platform)} and give Rapport its key")
    url = notification_url(platform)
    created = platform.subscribe_application(settings_of(platform), url)
    with database.session() as db:
        db.add(PlatformWebhook(platform=platform.name, environment=environment(platform),
                               notification_url=url, subscription_id=created.subscription_id,
                               credentials=sealing.seal({"signature_key": created.signature_key})))
    return application_webhook(platform)


def note_revocation(clinic_id: int, revoked_at: datetime | None) -> bool:
    """The account withdrew Rapport's access: the clinic needs reconnecting, unless the
    revocation is older than the clinic's current token (platforms redeliver events for
    days, and the account may have connected again since). True when it was noted."""
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        platform, values = platform_of(clinic), records.credentials(clinic)
    issued = platform.token_issued_at(values)
    if revoked_at is not None and issued is not None and revoked_at < issued:
        return False
    platform_refused(clinic_id, AuthError(
        f"the account owner disconnected Rapport in {platform.title} (access revoked)"))
    return True
