"""A clinic's credentials as the platform adapters need them for API calls.

For Square this adds the environment, the API host and the timeout, and renews an OAuth
access token before it expires (Square recommends at least weekly), storing the new one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from flask import current_app
from sqlalchemy import select

from handlers import square
from handlers.base import AuthError
from plugin import clinics, storage
from plugin.models import Clinic

log = logging.getLogger(__name__)


def square_settings() -> dict[str, Any]:
    config = current_app.config
    return {"environment": config["SQUARE_ENVIRONMENT"], "base_url": config["SQUARE_BASE_URL"],
            "timeout": config["HTTP_TIMEOUT"]}


def credentials_for(clinic: Clinic) -> dict[str, Any]:
    """Decrypted credentials for calling the clinic's platform (refreshed when due)."""
    values = {**clinics.credentials(clinic), "timeout": current_app.config["HTTP_TIMEOUT"]}
    if clinic.platform != "square":
        return values
    values = {**values, **square_settings()}
    if square.needs_refresh(values, datetime.now(timezone.utc)):
        values = refresh(clinic.id)
    return values


def refresh(clinic_id: int) -> dict[str, Any]:
    """Renew a Square OAuth token that is due and store it; AuthError if Square refuses.

    Checked again once the clinic's row is locked: two jobs that both found the token
    due renew it once, and the second uses what the first stored."""
    config = current_app.config
    with storage.session() as db:
        clinic = db.get(Clinic, clinic_id, with_for_update=True, populate_existing=True)
        values = {**clinics.credentials(clinic), **square_settings()}
        if not square.needs_refresh(values, datetime.now(timezone.utc)):
            return values
        tokens = square.refresh_access_token(
            values, application_id=config["SQUARE_APPLICATION_ID"],
            application_secret=config["SQUARE_APPLICATION_SECRET"])
        stored = {**clinics.credentials(clinic), **tokens}
        clinics.store_credentials(clinic, stored)
    return {**stored, **square_settings()}


def refresh_due() -> int:
    """Renew every Square token that is due (run daily by the cron); how many."""
    now = datetime.now(timezone.utc)
    with storage.session() as db:
        due = [c.id for c in db.scalars(select(Clinic).where(
            Clinic.platform == "square", Clinic.status == "active"))
            if square.needs_refresh(clinics.credentials(c), now)]
    for clinic_id in due:
        try:
            refresh(clinic_id)
        except AuthError as error:
            clinics.platform_refused(clinic_id, error)
        except Exception as error:  # noqa: BLE001 - one clinic must not stop the others
            # Square out of reach: the token still has three weeks; tomorrow's run, or
            # the next call for this clinic, tries again.
            log.warning("square.refresh-failed: clinic %s: %s", clinic_id, error)
    return len(due)
