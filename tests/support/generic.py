"""The generic platform as the tests drive it: its events, signed the way a booking
system signs them, and a clinic added the way ``rapport clinic add`` adds one."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from flask import Flask

from handlers import generic
from plugin.clinics import connecting
from plugin.store import database
from plugin.store.models import Clinic

ALWAYS_OPEN = {"send_delay_minutes": 0, "window_start": "00:00", "window_end": "24:00"}
"""Rules that send at once, at any hour."""


def event_body(
    event_type: str = "appointment.completed",
    *,
    appointment_id: str = "A-100",
    client_id: str = "C-7",
    email: str = "sam@example.com",
    end: datetime | None = None,
    first_name: str = "Sam",
    locale: str = "en",
    therapist=("T-2", "Dana"),
    occurred_at: datetime | None = None,
) -> bytes:
    end = end or datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    occurred_at = occurred_at or datetime.now(timezone.utc)
    return json.dumps(
        {
            "type": event_type,
            "timestamp": occurred_at.isoformat(),
            "data": {
                "appointment": {
                    "id": appointment_id,
                    "start": (end - timedelta(hours=1)).isoformat(),
                    "end": end.isoformat(),
                    "service": "Deep tissue 60",
                },
                "client": {
                    "id": client_id,
                    "email": email,
                    "first_name": first_name,
                    "locale": locale,
                },
                "therapist": {"id": therapist[0], "name": therapist[1]} if therapist else None,
            },
        }
    ).encode()


def sign_generic(body: bytes, clinic: dict, msg_id: str | None = None, **kwargs) -> dict:
    """The headers a booking system sends ``body`` to ``clinic`` with (Standard Webhooks)."""
    return generic.sign(
        body, secret=clinic["webhook_secret"], msg_id=msg_id or f"msg_{uuid.uuid4().hex}", **kwargs
    )


def webhook_path(clinic: dict) -> str:
    return f"/webhooks/generic/{clinic['key']}"


def add_generic_clinic(app: Flask, *, callback_url: str, timing: dict | None = None,
                       timezone: str = "Europe/London", **clinic_settings) -> dict:
    """Harbour Massage on the generic platform, as ``rapport clinic add`` adds it, with
    ``timing`` over :data:`ALWAYS_OPEN` and the other ``clinic_settings`` as given: what
    the admin copies (key, secrets, URLs)."""
    with app.app_context():
        added = connecting.add(name="Harbour Massage", platform_name="generic",
                               given={"callback_url": callback_url}, timezone=timezone,
                               language=None)
        with database.session() as db:
            clinic = db.get(Clinic, added.clinic_id)
            # As stored, unchecked: a test may want rules no admin could set (no time
            # at all before a check-in expires).
            clinic.settings = {"timing": {**ALWAYS_OPEN, **(timing or {})}, **clinic_settings}
        return added.shown


def generic_credentials(callback_url: str) -> dict:
    """A generic clinic's credentials, as ``rapport clinic add --platform generic`` makes
    them (new secrets, the callback URL)."""
    return generic.PLATFORM.credentials_from({"callback_url": callback_url}, {})
