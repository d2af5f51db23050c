"""The seam between a clinic and its booking platform, for calling it.

Everything the pipeline asks of a platform goes through here: which platform a clinic
is on (:func:`platform_of`), the installation's settings for it (:func:`settings_of`,
``RAPPORT_<PLATFORM>_*``), the credentials a call takes (:func:`credentials_for`,
renewing an OAuth token first when the platform declares ``token_refresh``, with the
HTTP session that counts the clinic's calls, :mod:`plugin.clinics.api_calls`), and what
happens when the platform refuses the clinic (:func:`platform_refused`: "needs
reconnecting", in this one place). Which platforms have a capability is asked of their
declarations (:func:`names_where`), never of their methods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import current_app
from sqlalchemy import select

import handlers
from handlers.base import RECONNECT_ERRORS, Capabilities, MissingPermission, Platform
from plugin.clinics import api_calls, records
from plugin.store import database
from plugin.store.models import Clinic
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)


def platform_of(clinic: Clinic) -> Platform:
    return handlers.platform(clinic.platform)


def names_where(wanted: Callable[[Capabilities], bool]) -> list[str]:
    """The platforms whose declaration ``wanted`` accepts."""
    return [platform.name for platform in handlers.platforms() if wanted(platform.capabilities)]


def setting_name(platform: Platform, name: str) -> str:
    """A platform setting's name in the configuration (``SQUARE_ENVIRONMENT``)."""
    return f"{platform.name.upper()}_{name}"


def settings_of(platform: Platform, config: Any = None) -> dict[str, Any]:
    """The installation's ``RAPPORT_<PLATFORM>_*`` settings, by their lower-case names."""
    config = current_app.config if config is None else config
    return {setting.name.lower(): config.get(setting_name(platform, setting.name))
            for setting in platform.settings}


def call_context(platform: Platform, clinic_id: int | None = None) -> dict[str, Any]:
    """What every call to ``platform`` takes besides the clinic's own credentials; for a
    clinic that exists, the HTTP session counting its calls (``http``)."""
    context = {**platform.api_context(settings_of(platform)),
               "timeout": current_app.config["HTTP_TIMEOUT"]}
    if clinic_id is not None:
        context["http"] = api_calls.session_for(clinic_id)
    return context


def credentials_for(clinic: Clinic) -> dict[str, Any]:
    """The clinic's credentials for calling its platform (its token renewed when due)."""
    platform = platform_of(clinic)
    values = {**records.credentials(clinic), **call_context(platform, clinic.id)}
    if platform.capabilities.token_refresh and platform.needs_refresh(
            values, datetime.now(timezone.utc)):
        values = refresh(clinic.id)
    return values


def refresh(clinic_id: int) -> dict[str, Any]:
    """Renew the clinic's token and store it; AuthError if the platform refuses.

    Checked again once the clinic's row is locked: two jobs that both found the token
    due renew it once, and the second uses what the first stored."""
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id, with_for_update=True, populate_existing=True)
        platform = platform_of(clinic)
        context = call_context(platform, clinic_id)
        values = {**records.credentials(clinic), **context}
        if not platform.needs_refresh(values, datetime.now(timezone.utc)):
            return values
        tokens = platform.refresh(values, settings_of(platform))
        stored = {**records.credentials(clinic), **tokens}
        records.store_credentials(clinic, stored)
    return {**stored, **context}


@job
def refresh_tokens() -> int:
    """Renew every OAuth token that is due (run daily by the cron); how many."""
    moment = datetime.now(timezone.utc)
    with database.session() as db:
        due = [clinic.id for clinic in db.scalars(select(Clinic).where(
            Clinic.platform.in_(names_where(lambda caps: caps.token_refresh)),
            Clinic.status == "active"))
            if platform_of(clinic).needs_refresh(records.credentials(clinic), moment)]
    for clinic_id in due:
        try:
            refresh(clinic_id)
        except RECONNECT_ERRORS as error:  # a site that withdrew its approval refuses so
            platform_refused(clinic_id, error)
        except Exception as error:  # noqa: BLE001 - one clinic must not stop the others
            # The platform out of reach: the token is renewed well before it expires;
            # tomorrow's run, or the next call for this clinic, tries again.
            log.warning("platform.refresh-failed: clinic %s: %s", clinic_id, error)
    return len(due)


def refusal_detail(error: Exception) -> str:
    """What the clinic's admin reads beside "needs reconnecting"."""
    if isinstance(error, MissingPermission):
        return f"{error} — connect again and allow everything Rapport asks for"
    return str(error)


def platform_refused(clinic_id: int, error: Exception) -> None:
    """The platform refused the clinic's credentials, or a permission Rapport needs:
    the clinic needs reconnecting, and its work waits until it does."""
    with database.session() as db:
        records.mark_needs_reconnecting(db.get(Clinic, clinic_id), refusal_detail(error))
