"""Rapport facing the local Square (``tests/sandboxes/square.py``): the app on a real
socket, a clinic in manual mode, and Square delivering booking events to it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests

import handlers
from plugin.clinics import connecting
from plugin.clinics import records as clinics
from plugin.clinics.platforms import settings_of
from plugin.store import database as storage
from tests.support.generic import ALWAYS_OPEN
from tests.support.servers import LiveServer

SQUARE = handlers.platform("square")
SQUARE_AT_ONCE = {**ALWAYS_OPEN, "completion_grace_minutes": 0}
"""Square derives completion from the end time: no grace either, so a visit that ended
in the past is checked at once (time moved by configuration, not by sleeping)."""
SIGNATURE_KEY = "harbour-square-signature-key"
THERAPIST_NOTE = "Prefers light pressure on the neck.\nParks at the back."
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def square_credentials(**options) -> dict:
    """A Square clinic's credentials from what the admin gives (``rapport clinic add``'s
    options), as Square's declaration makes them."""
    return SQUARE.credentials_from(options, settings_of(SQUARE))


def shown(created) -> dict:
    """What the admin copies for a clinic just created."""
    return connecting.describe(created.clinic, created.credentials)[0]


def serving_square(app_factory, square_sandbox, **config):
    """Rapport on a real socket (Square delivers to it and redirects to it), talking to
    the Square sandbox; yields the app and its URL."""
    holder = {}
    live = LiveServer(lambda environ, start: holder["app"](environ, start))
    app = app_factory(BASE_URL=live.url, SQUARE_ENVIRONMENT="sandbox",
                      SQUARE_BASE_URL=square_sandbox.base_url,
                      SQUARE_APPLICATION_ID=square_sandbox.application_id,
                      SQUARE_APPLICATION_SECRET=square_sandbox.application_secret,
                      SQUARE_ACCESS_TOKEN=square_sandbox.personal_access_token, **config)
    holder["app"] = app
    yield app, live.url
    live.stop()


def add_square_clinic(square_app, square_sandbox, language="en") -> dict:
    """Harbour Massage in manual mode: its own subscription, key and notification URL;
    the URL Square delivers its events to."""
    app, url = square_app
    notification_url = f"{url}/webhooks/square/harbour"
    with app.app_context(), storage.session() as db:
        credentials = square_credentials(
            access_token=square_sandbox.personal_access_token,
            webhook_signature_key=SIGNATURE_KEY,
            notification_url=notification_url,
        )
        clinics.create(
            db,
            name="Harbour Massage",
            platform="square",
            timezone="Europe/London",
            language=language,
            credentials=credentials,
            key=SQUARE.clinic_key(credentials),
            settings={"timing": SQUARE_AT_ONCE},
        )
    return {"url": notification_url}


def send_booking_event(square_sandbox, clinic, event_type, booking_id, *, key=SIGNATURE_KEY,
                       url=None, **extra):
    """Square delivering a ``booking.*`` event to the clinic: the response and the event."""
    event = square_sandbox.booking_event(event_type, booking_id, **extra)
    return square_sandbox.deliver(
        url or clinic["url"], event, signature_key=key, notification_url=clinic["url"]
    ), event


# The browser the Connect link is opened in: signed in to the console, as an operator
# (set for each test that serves Rapport with Square: tests/conftest.py).
BROWSER: dict[str, requests.Session] = {}


def connect(base_url: str, key: str) -> requests.Response:
    """The admin, signed in, opens the Connect link and allows Rapport in Square (the
    sandbox's authorize page grants what is asked and redirects back)."""
    return BROWSER["session"].get(f"{base_url}/connect/square/{key}", timeout=10)


def to_application(sandbox, url: str, event: dict, signature_key: str | None = None):
    """Square delivering ``event`` to the application's subscription (its key unless told)."""
    (subscription,) = sandbox.subscriptions
    return sandbox.deliver(
        f"{url}/webhooks/square",
        event,
        signature_key=signature_key or subscription["signature_key"],
        notification_url=subscription["notification_url"],
    )


def ended_visit(sandbox, **customer):
    """A customer's booking that ended half an hour ago; (customer, its booking event)."""
    seeded = sandbox.seed_customer(**customer)
    booking = sandbox.seed_booking(customer_id=seeded["id"], start_at=NOW - timedelta(minutes=90))
    return seeded, sandbox.booking_event("booking.created", booking["id"])


def stored_token(app, key: str) -> str:
    """The access token Rapport keeps (sealed) for the clinic ``key``."""
    with app.app_context(), storage.session() as db:
        return clinics.credentials(clinics.by_key(db, key))["access_token"]


def add_oauth_clinic(app) -> dict:
    """``rapport clinic add --platform square --name …``: created, not connected yet."""
    with app.app_context(), storage.session() as db:
        created = clinics.create(
            db,
            name="Harbour Massage",
            platform="square",
            timezone="Europe/London",
            credentials=square_credentials(), status="not_connected",
            settings={"timing": SQUARE_AT_ONCE},
        )
        return shown(created)


def add_manual_clinic(square_app, square_sandbox) -> dict:
    """A clinic set up by hand: its own subscription's key (``harbour-key``) and
    notification URL; what the admin copies."""
    app, url = square_app
    with app.app_context(), storage.session() as db:
        credentials = square_credentials(
            access_token=square_sandbox.personal_access_token,
            webhook_signature_key="harbour-key", notification_url=f"{url}/webhooks/square/harbour")
        created = clinics.create(db, name="Harbour Massage", platform="square",
                                 credentials=credentials,
                                 key=SQUARE.clinic_key(credentials),
                                 settings={"timing": SQUARE_AT_ONCE})
        return shown(created)
