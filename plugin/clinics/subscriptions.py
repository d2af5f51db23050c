"""Webhook subscriptions that belong to Rapport's application rather than to a clinic
(``Webhooks.PER_APPLICATION``), and what their deliveries tell about access.

Such a platform sends every connected account's events to one URL,
``<base URL>/webhooks/<platform>`` (or the one its settings name), signed with the
subscription's key. Rapport creates the subscription through the platform's API the
first time a clinic connects (``Capabilities.subscription``) and keeps its key sealed,
one per environment (a platform's sandbox and production subscriptions are separate);
keys of a subscription made by hand come from the installation's settings.

A platform that declares ``test_event`` sends a sample event to that subscription when
asked (:func:`send_test_event`, the console's "Send a test event"), which shows whether
the platform can reach Rapport right now; :func:`describe_test_event` says what happened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from handlers.base import (
    AdapterError,
    AuthError,
    ConnectProblem,
    Platform,
    TestResult,
    TransientError,
    Webhooks,
)
from plugin.clinics import records
from plugin.clinics.platforms import call_context, platform_of, platform_refused, settings_of
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


class TestEventProblem(Exception):
    """No test event could be asked for; the message says why, for the clinic's admin."""

    __test__ = False  # an error, not a test class


def application_subscription_id(platform: Platform) -> str | None:
    """The id of the application subscription Rapport made (None: it made none here)."""
    with database.reading() as db:
        return db.scalar(select(PlatformWebhook.subscription_id).where(
            PlatformWebhook.platform == platform.name,
            PlatformWebhook.environment == environment(platform),
            PlatformWebhook.notification_url == notification_url(platform)))


def why_no_test_event(clinic: Clinic) -> str | None:
    """Why no test event can be asked for this clinic, in words for its admin; None when
    one can (its platform declares ``test_event``, and its events come on a subscription
    Rapport made). Asks nothing of the platform; call it with no session open."""
    platform, values = platform_of(clinic), records.credentials(clinic)
    title = platform.title
    if not platform.capabilities.test_event:
        return f"{title} cannot be asked for a test event."
    check = (f"To check it, make or change a booking in {title}: the health page counts "
             "the events received.")
    if platform.webhooks_of(values) is not Webhooks.PER_APPLICATION:
        return (f"This clinic's events come on a {title} webhook subscription of its own, "
                f"made by hand in {title}, not by Rapport, so Rapport cannot ask {title} to "
                f"test it. {check}")
    if application_subscription_id(platform):
        return None
    if application_webhook(platform):
        return (f"Rapport's {title} webhook subscription was made by hand, not by Rapport, "
                f"so Rapport cannot ask {title} to test it. {check}")
    return (f"Rapport has no {title} webhook subscription yet: it makes one the first time "
            f"a clinic connects through {title}'s sign-in.")


def send_test_event(clinic_id: int) -> TestResult:
    """Ask the clinic's platform to send a sample event to Rapport's application
    subscription now; what the platform said of Rapport's answer. One call, counted as
    the clinic's. Raises :class:`TestEventProblem` when it cannot be asked or refuses;
    never marks the clinic as needing reconnecting (the call is made with the
    application's credentials, not the clinic's)."""
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
    refusal, platform = why_no_test_event(clinic), platform_of(clinic)
    if refusal:
        raise TestEventProblem(refusal)
    title = platform.title
    settings = {**settings_of(platform), **call_context(platform, clinic_id)}
    try:
        return platform.send_test_event(settings, application_subscription_id(platform))
    except ConnectProblem as error:
        raise TestEventProblem(f"{error} (ask whoever runs Rapport).") from error
    except TransientError as error:
        raise TestEventProblem(f"{title} did not answer ({error}). Try again in a few "
                               "minutes.") from error
    except AuthError as error:
        raise TestEventProblem(f"{title} refused Rapport's application credentials ({error}); "
                               "ask whoever runs Rapport to check them.") from error
    except AdapterError as error:
        raise TestEventProblem(f"{title} refused to send a test event ({error}).") from error


def describe_test_event(platform: Platform, result: TestResult) -> tuple[bool, str]:
    """What the admin reads after a test event: whether the platform reached Rapport, and
    what happened in plain words, with what to check when it did not."""
    title, url = platform.title, notification_url(platform)
    if result.reached:
        return True, (f"{title} reached Rapport: it answered {result.status}. "
                      f"Bookings made in {title} reach Rapport the same way.")
    if result.status is None:
        return False, (f"{title} could not reach Rapport: it got no answer from {url}. Check "
                       "that this address is reachable from the internet, over HTTPS, and "
                       "that Rapport's web service is running.")
    said = f"{title} reached Rapport, but it answered {result.status}"
    if result.status == 401:
        return False, (f"{said}: the event's signature did not verify. The subscription's "
                       f"signature key, or its notification URL, is not the one Rapport "
                       f"holds: the subscription in {title} must send to {url}, exactly.")
    if result.status == 404:
        return False, (f"{said}: no webhook endpoint there. Check that the subscription in "
                       f"{title} sends to {url}, exactly.")
    if result.status == 429:
        return False, (f"{said}: too many refused requests came from {title}'s address "
                       "in the last minute. Try again in a minute.")
    if result.status >= 500:
        return False, (f"{said}: Rapport could not store the event. Check that Rapport's "
                       f"database and Redis are running; {title} sends real events again "
                       "until they are stored.")
    return False, f"{said}. Check that the subscription in {title} sends to {url}."
