"""Clinic records: creating them, finding them (by key, by platform account), their sealed
credentials, their connection status, their time zone and language."""

from __future__ import annotations

import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import PLATFORMS
from plugin.i18n import supported_languages
from plugin.store import sealing
from plugin.store.models import Clinic


class ClinicError(ValueError):
    """A clinic cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class NewClinic:
    clinic: Clinic
    webhook_url: str
    credentials: dict[str, Any]


def webhook_url(clinic: Clinic) -> str:
    return f"{current_app.config['BASE_URL']}/webhooks/{clinic.platform}/{clinic.key}"


def create(db: Session, *, name: str, platform: str, timezone: str = "UTC",
           language: str = "en", credentials: dict[str, Any],
           settings: dict[str, Any] | None = None, key: str | None = None,
           status: str = "active") -> NewClinic:
    if platform not in PLATFORMS:
        raise ClinicError(f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}")
    check_name(name)
    _check_timezone(timezone)
    _check_language(language)
    if key and by_key(db, key) is not None:
        raise ClinicError(f"a clinic with the key {key!r} exists already")
    clinic = Clinic(
        # Hex, so a key never starts with "-" and reads as an option on a command line.
        key=key or secrets.token_hex(8),
        status=status,
        name=name.strip(),
        platform=platform,
        timezone=timezone,
        language=language,
        settings=settings or {},
        credentials=sealing.seal(credentials),
    )
    db.add(clinic)
    db.flush()
    return NewClinic(clinic=clinic, webhook_url=webhook_url(clinic), credentials=credentials)


def check_name(name: str) -> None:
    """A clinic's name goes into email subjects and pages: one line of text."""
    if not name.strip():
        raise ClinicError("the clinic needs a name")
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in name):
        raise ClinicError("the clinic's name must be one line of text, without line breaks "
                          "or other control characters")
    if len(name.strip()) > 200:
        raise ClinicError("the clinic's name is longer than 200 characters")


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ClinicError(f"unknown time zone {name!r}; use an IANA name like Europe/Paris")


def _check_language(language: str) -> None:
    if language not in supported_languages():
        raise ClinicError(f"no translation for {language!r}; choose one of "
                          f"{', '.join(supported_languages())}")


def rename(clinic: Clinic, name: str | None) -> None:
    """The clinic's name as clients read it in their emails: one line, up to 200."""
    name = (name or "").strip()
    if not name:
        raise ClinicError("the clinic needs a name")
    if len(name) > 200 or any(mark in name for mark in "\r\n\0"):
        raise ClinicError("the clinic's name is one line of at most 200 characters")
    clinic.name = name


FROM_PLATFORM = "locale_from_platform"
"""In a clinic's settings: which of ``timezone`` and ``language`` the admin left out, to
be taken from the platform when it is connected (the business's, where it can say)."""


def from_platform(clinic: Clinic) -> list[str]:
    return list((clinic.settings or {}).get(FROM_PLATFORM, []))


def set_locale(clinic: Clinic, *, timezone: str | None = None,
               language: str | None = None) -> None:
    """The admin's choice, which the platform's never overrides afterwards."""
    if timezone:
        _check_timezone(timezone)
        clinic.timezone = timezone
    if language:
        _check_language(language)
        clinic.language = language
    _settled(clinic, *(name for name, value in
                       (("timezone", timezone), ("language", language)) if value))


def adopt_locale(clinic: Clinic, *, timezone: str | None, language: str | None) -> None:
    """What the platform says, for what the admin left out. A value Rapport cannot use
    (an unknown zone, a language without a translation) leaves the default for good; one
    the platform did not give stays to be asked for at the next connection."""
    pending = from_platform(clinic)
    said = {"timezone": timezone, "language": language}
    checks = {"timezone": _check_timezone, "language": _check_language}
    for name in pending:
        if not said[name]:
            continue
        try:
            checks[name](said[name])
            setattr(clinic, name, said[name])
        except ClinicError:
            pass
    _settled(clinic, *(name for name in pending if said[name]))


def _settled(clinic: Clinic, *names: str) -> None:
    pending = [name for name in from_platform(clinic) if name not in names]
    settings = {key: value for key, value in (clinic.settings or {}).items()
                if key != FROM_PLATFORM}
    clinic.settings = {**settings, FROM_PLATFORM: pending} if pending else settings


def by_key(db: Session, key: str) -> Clinic | None:
    return db.scalar(select(Clinic).where(Clinic.key == key))


@dataclass(frozen=True)
class WebhookTarget:
    clinic_id: int
    platform: str
    credentials: dict[str, Any]


# The webhook path needs a clinic's id and secrets on every request; reading and
# decrypting them each time costs more than the rest of the request. A few seconds of
# caching keeps a rotated secret effective almost at once.
_TARGETS: dict[tuple[str, str], tuple[float, WebhookTarget]] = {}
TARGET_TTL_SECONDS = 5.0


def webhook_target(key: str, platform: str) -> WebhookTarget | None:
    """The clinic a webhook is addressed to, or None when there is no such clinic."""
    cache_key = (current_app.config["DATABASE_URL"], key)
    cached = _TARGETS.get(cache_key)
    now = time.monotonic()
    if cached and cached[0] > now:
        target = cached[1]
    else:
        with current_app.extensions["rapport.engine"].connect() as connection:
            row = connection.execute(
                select(Clinic.id, Clinic.platform, Clinic.credentials)
                .where(Clinic.key == key)).first()
        if row is None:
            return None
        target = WebhookTarget(row.id, row.platform, sealing.unseal(row.credentials))
        _TARGETS[cache_key] = (now + TARGET_TTL_SECONDS, target)
    return target if target.platform == platform else None


def credentials(clinic: Clinic) -> dict[str, Any]:
    return sealing.unseal(clinic.credentials)


def clinic_for_account(platform: str, account_id: str) -> int | None:
    """The clinic connected to this platform account (routes per-application webhooks)."""
    with current_app.extensions["rapport.engine"].connect() as connection:
        return connection.execute(select(Clinic.id).where(
            Clinic.platform == platform, Clinic.account_id == account_id,
            Clinic.status != "disconnected")).scalar()


def store_credentials(clinic: Clinic, values: dict[str, Any]) -> None:
    clinic.credentials = sealing.seal(values)
    _TARGETS.clear()


def mark_needs_reconnecting(clinic: Clinic, detail: str) -> None:
    clinic.status = "needs_reconnecting"
    clinic.status_detail = detail


def mark_connected(clinic: Clinic) -> None:
    clinic.status = "active"
    clinic.status_detail = None
