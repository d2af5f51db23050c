"""A Square clinic connected through Square's sign-in, with Rapport on a real socket and
the application's subscription made by Rapport: what "Send a test event" needs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import func, select

from plugin.clinics import api_calls, records
from plugin.store import database
from plugin.store.models import Appointment, Clinic, InboxEvent
from tests.support import console
from tests.support.square import square_credentials


@dataclass
class Connected:
    app: object
    url: str  # Rapport's base URL
    key: str  # the clinic's
    clinic_id: int
    browser: requests.Session  # an operator signed in to the console

    def state(self) -> dict:
        """What a test event must leave as it was: the clinic, the inbox, appointments."""
        with self.app.app_context(), database.session() as db:
            clinic = db.get(Clinic, self.clinic_id)
            return {"status": (clinic.status, clinic.status_detail),
                    "credentials": records.credentials(clinic),
                    "inbox": db.scalar(select(func.count()).select_from(InboxEvent)),
                    "appointments": db.scalar(select(func.count()).select_from(Appointment))}

    def calls(self) -> int:
        with self.app.app_context(), database.session() as db:
            return api_calls.this_month(db, self.clinic_id)


def connect_square(app, url: str, name: str = "Harbour Massage") -> Connected:
    """``rapport clinic add --platform square``, then its Connect link opened and Square's
    sign-in allowed (the sandbox grants what is asked and sends the browser back)."""
    with app.app_context(), database.session() as db:
        created = records.create(db, name=name, platform="square",
                                 credentials=square_credentials(),
                                 status="not_connected")
        key, clinic_id = created.clinic.key, created.clinic.id
    browser = console.browser_session(app, url)
    page = browser.get(f"{url}/connect/square/{key}", timeout=10)
    assert page.status_code == 200 and "Square is connected" in page.text, page.text
    return Connected(app, url, key, clinic_id, browser)


@pytest.fixture
def connected_square(square_app) -> Connected:
    app, url = square_app
    return connect_square(app, url)
