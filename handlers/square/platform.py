"""Square as a :class:`~handlers.base.Platform`: its declaration, and how a clinic
connects — through Square's sign-in (OAuth, events on the application's subscription,
routed by merchant id) or by hand ("manual mode": a personal access token and a
subscription of the seller's own, delivered to the clinic's URL).

The calls themselves live in the package's other modules (see ``handlers/square``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from handlers.base import (
    AppointmentEvent,
    AuthError,
    BusinessLocale,
    Capabilities,
    Client,
    Completion,
    Connection,
    ConnectProblem,
    Field,
    InboundRequest,
    Note,
    NotePlace,
    Platform,
    Revocation,
    Setting,
    Shown,
    Subscription,
    TestResult,
    TransientError,
    Webhooks,
    WriteBackResult,
    WriteBackTarget,
)
from handlers.square import bookings as bookings
from handlers.square import install as install
from handlers.square import locations as locations
from handlers.square import notes as notes
from handlers.square import oauth as oauth
from handlers.square import webhooks as webhooks

ENVIRONMENTS = ("sandbox", "production")
MANUAL_FIELDS = ("access_token", "webhook_signature_key", "notification_url")


def _http_url(value: str | None, option: str) -> str:
    parsed = urlparse(value or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConnectProblem(f"{option} must be an http(s) URL, e.g. https://example.com/hook")
    return value


class SquarePlatform(Platform):
    name = "square"
    title = "Square"
    capabilities = Capabilities(
        completion=Completion.END_TIME,
        note_places=frozenset({NotePlace.PROFILE_NOTE, NotePlace.PROFILE_FIELD,
                               NotePlace.NEXT_BOOKING}),
        connections=frozenset({Connection.OAUTH, Connection.API_KEY}),
        webhooks=frozenset({Webhooks.PER_APPLICATION, Webhooks.PER_CLINIC}),
        token_refresh=True,
        subscription=True,
        # The same rendered note goes to the customer profile (no stated limit) and to
        # the next booking's seller_note (4096 characters, shared with the therapist's
        # own text): half of it leaves the therapist room on the booking.
        note_limit=2000,
        business_locale=True,
        test_event=True,
    )
    settings = (
        Setting("ENVIRONMENT", "`sandbox` for Square's test accounts", default="production",
                choices=ENVIRONMENTS),
        Setting("APPLICATION_ID", "Square OAuth (docs/platforms/square.md)"),
        Setting("APPLICATION_SECRET", "Square OAuth (docs/platforms/square.md)"),
        Setting("BASE_URL", "replaces Square's API host, for a stand-in when testing"),
        Setting("ACCESS_TOKEN", "the application's personal access token, to create its "
                "webhook subscription"),
        Setting("WEBHOOK_SIGNATURE_KEY", "the key of a subscription created by hand",
                keys=True),
        Setting("NOTIFICATION_URL", "the application subscription's notification URL, "
                "exactly as registered"),
    )
    connect_fields = (
        Field("access_token", "square (manual mode): an access token.",
              label="Access token", secret=True),
        Field("webhook_signature_key", "square (manual mode): the subscription's key.",
              label="Webhook signature key", secret=True),
        Field("notification_url", "square (manual mode): the subscription's URL, exactly "
              "as registered in the Square Developer Console.", label="Notification URL"),
    )
    update_fields = (
        Field("access_token", "manual mode: a new personal access token.",
              label="Access token", secret=True, tried=True),
        Field("add_signature_key", "manual mode: the subscription's new signature key "
              "(the old one keeps working until --retire-old-keys).",
              label="New signature key", secret=True),
        Field("retire_old_keys", "Accept only the newest signature key.", flag=True,
              label="Accept only the newest signature key"),
    )
    connected_message = (
        "Rapport will now follow this clinic's bookings. After each completed visit the "
        "client gets a one-minute check-in, and the answers appear on the client's Square "
        "profile, in the note and in the “Rapport alliance” field.")

    # --- installation settings ------------------------------------------------------

    def api_context(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {"environment": settings.get("environment") or "production",
                "base_url": settings.get("base_url")}

    # --- connecting -----------------------------------------------------------------

    def connection_of(self, credentials: Mapping[str, Any]) -> Connection:
        return Connection.OAUTH if credentials.get("mode") == "oauth" else Connection.API_KEY

    def webhooks_of(self, credentials: Mapping[str, Any]) -> Webhooks:
        # An OAuth clinic's events come on the application's own subscription; its clinic
        # URL would answer 401 to anything sent there.
        if self.connection_of(credentials) is Connection.OAUTH:
            return Webhooks.PER_APPLICATION
        return Webhooks.PER_CLINIC

    def credentials_from(self, given: Mapping[str, Any],
                         settings: Mapping[str, Any]) -> dict[str, Any]:
        present = [name for name in MANUAL_FIELDS if given.get(name)]
        if not present:
            if not (settings.get("application_id") and settings.get("application_secret")):
                raise ConnectProblem(
                    "Square's sign-in is not set up on this Rapport, so the clinic's Connect "
                    "Square link would not work: set RAPPORT_SQUARE_APPLICATION_ID and "
                    "RAPPORT_SQUARE_APPLICATION_SECRET (docs/platforms/square.md), or add "
                    "the clinic in manual mode with --access-token, --webhook-signature-key "
                    "and --notification-url")
            return {"mode": "oauth"}  # connected later, at its connect link
        missing = [f"--{name.replace('_', '-')}" for name in MANUAL_FIELDS
                   if name not in present]
        if missing:
            raise ConnectProblem(
                f"{', '.join(missing)} also required for Square's manual mode; or give none "
                "of the three to connect the clinic with Square's own sign-in (OAuth)")
        return {
            "mode": "manual",
            "access_token": given["access_token"],
            "signature_keys": [given["webhook_signature_key"]],
            "notification_url": _http_url(given["notification_url"], "--notification-url"),
        }

    def prepare_account(self, credentials: Mapping[str, Any]) -> None:
        """Define Rapport's "Rapport alliance" customer attribute: the install step, and
        the first call a wrong or revoked token fails on, so it is said at once."""
        install.ensure_attribute_definition(credentials)

    def explain_refusal(self, error: Exception, credentials: Mapping[str, Any]) -> str:
        """What the admin reads when :meth:`prepare_account` failed in manual mode."""
        environment = credentials.get("environment") or "production"
        if isinstance(error, AuthError):
            return (f"Square refused the access token ({error}). Use the personal access "
                    "token of your application (Developer Console → Credentials) for the "
                    f"{environment} environment (RAPPORT_SQUARE_ENVIRONMENT).")
        if isinstance(error, TransientError):
            return (f"Square did not answer ({error}); nothing was saved, try again in a few "
                    "minutes.")
        return f"Square refused to set up the clinic ({error}); nothing was saved."

    def clinic_key(self, credentials: Mapping[str, Any]) -> str | None:
        """Manual mode: the last part of the notification URL the seller registered."""
        if credentials.get("mode") != "manual":
            return None
        path = urlparse(credentials["notification_url"]).path.rstrip("/")
        prefix = "/webhooks/square/"
        key = path[len(prefix):] if path.startswith(prefix) else ""
        if not key or "/" in key or len(key) > 64 or key.startswith("-"):
            root = credentials["notification_url"].split("/webhooks/")[0].rstrip("/")
            if "://" not in root:
                root = "https://rapport.example"
            raise ConnectProblem(
                "the notification URL must end in /webhooks/square/<clinic key>, the key "
                "being any name you choose: register "
                f"{root}/webhooks/square/{secrets.token_hex(8)} in the Developer Console and "
                "pass that URL here")
        return key

    def shown(self, credentials: Mapping[str, Any]) -> list[Shown]:
        if credentials.get("mode") == "manual":
            return [Shown("notification_url", "Square notification URL:",
                          credentials["notification_url"])]
        return []

    def next_steps(self, credentials: Mapping[str, Any], clinic_key: str) -> list[str]:
        if credentials.get("mode") == "manual":
            return [
                "",
                "Square will send this clinic's booking events to the notification URL above,",
                "signed with the subscription's key. Send yourself a test with",
                f"`rapport clinic send-test {clinic_key} --to you@example.com`.",
            ]
        return [
            "",
            "Next: open the Connect Square link, signed in as the clinic's Square account",
            "owner, and allow what Rapport asks for. Until then the clinic shows as",
            "'not connected'.",
        ]

    def reconnect_hint(self, credentials: Mapping[str, Any], clinic_key: str) -> str:
        return ("create a new personal access token in the Square Developer Console and "
                f"run: rapport clinic square {clinic_key} --access-token NEW")

    def updated_credentials(self, credentials: Mapping[str, Any],
                            given: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        if credentials.get("mode") != "manual":
            raise ConnectProblem(
                "only manual-mode Square clinics are updated here; an OAuth clinic "
                "reconnects at its Connect Square link (`rapport clinic list`)")
        values = dict(credentials)
        if given.get("access_token"):
            values["access_token"] = given["access_token"]
        if given.get("add_signature_key"):
            values["signature_keys"] = [*values["signature_keys"], given["add_signature_key"]]
        if given.get("retire_old_keys"):
            values["signature_keys"] = values["signature_keys"][-1:]
        return values, f"{len(values['signature_keys'])} signature key(s) accepted."

    def business_locale(self, credentials: Mapping[str, Any]) -> BusinessLocale:
        found = locations.business_locale(credentials)
        return BusinessLocale(timezone=found.timezone, language=found.language)

    def account_id_of(self, credentials: Mapping[str, Any]) -> str | None:
        return credentials.get("merchant_id")

    # OAuth

    def check_oauth_settings(self, settings: Mapping[str, Any]) -> None:
        if not (settings.get("application_id") and settings.get("application_secret")):
            raise ConnectProblem(
                "Square is not set up on this Rapport: set RAPPORT_SQUARE_APPLICATION_ID and "
                "RAPPORT_SQUARE_APPLICATION_SECRET (Square Developer Console → your "
                "application → OAuth)")

    def authorize_url(self, settings: Mapping[str, Any], *, state: str,
                      redirect_uri: str) -> str:
        return oauth.authorize_url(application_id=settings["application_id"], state=state,
                                   environment=settings.get("environment") or "production",
                                   base_url=settings.get("base_url"),
                                   redirect_uri=redirect_uri)

    def exchange_code(self, settings: Mapping[str, Any], *, code: str,
                      redirect_uri: str) -> dict[str, Any]:
        return oauth.exchange_code(
            application_id=settings["application_id"],
            application_secret=settings["application_secret"], code=code,
            environment=settings.get("environment") or "production",
            base_url=settings.get("base_url"), redirect_uri=redirect_uri)

    def needs_refresh(self, credentials: Mapping[str, Any], now: datetime) -> bool:
        return oauth.needs_refresh(credentials, now)

    def refresh(self, credentials: Mapping[str, Any],
                settings: Mapping[str, Any]) -> dict[str, Any]:
        return oauth.refresh_access_token(
            credentials, application_id=settings.get("application_id"),
            application_secret=settings.get("application_secret"))

    def token_issued_at(self, credentials: Mapping[str, Any]) -> datetime | None:
        return oauth.token_issued_at(credentials)

    # The application's subscription

    def application_notification_url(self, settings: Mapping[str, Any]) -> str | None:
        return settings.get("notification_url") or None

    def application_signature_keys(self, settings: Mapping[str, Any]) -> list[str]:
        return list(settings.get("webhook_signature_key") or [])

    def subscribe_application(self, settings: Mapping[str, Any], url: str) -> Subscription:
        token = settings.get("access_token")
        if not token:
            raise ConnectProblem(
                "Rapport needs a Square webhook subscription to hear about bookings: set "
                "RAPPORT_SQUARE_ACCESS_TOKEN to the application's personal access token so "
                "Rapport creates it, or create it in the Developer Console (booking.created, "
                f"booking.updated, oauth.authorization.revoked, notification URL {url}) and "
                "set RAPPORT_SQUARE_WEBHOOK_SIGNATURE_KEY to its signature key")
        created = install.subscribe({"access_token": token, **self.api_context(settings)}, url)
        return Subscription(subscription_id=created.get("subscription_id"),
                            signature_key=created["signature_key"],
                            notification_url=created.get("notification_url") or url)

    def send_test_event(self, settings: Mapping[str, Any], subscription_id: str) -> TestResult:
        token = settings.get("access_token")
        if not token:
            raise ConnectProblem(
                "Square sends a test event only when asked with the application's personal "
                "access token: set RAPPORT_SQUARE_ACCESS_TOKEN")
        return install.send_test_event(
            {"access_token": token, "http": settings.get("http"),
             **self.api_context(settings)}, subscription_id)

    # --- receiving -------------------------------------------------------------------

    def verify(self, request: InboundRequest, credentials: Mapping[str, Any]) -> None:
        webhooks.verify(request, credentials)

    def delivery_id(self, request: InboundRequest) -> str:
        return webhooks.delivery_id(request)

    def parse(self, request: InboundRequest) -> list[AppointmentEvent]:
        return webhooks.parse(request)

    def account_id(self, request: InboundRequest) -> str | None:
        return webhooks.merchant_id(request)

    def revocation(self, request: InboundRequest) -> Revocation | None:
        found = webhooks.revocation(request)
        return Revocation(account_id=found[0], at=found[1]) if found else None

    # --- reading and writing ----------------------------------------------------------

    def fetch_appointment(self, credentials: Mapping[str, Any],
                          appointment_id: str) -> AppointmentEvent:
        return bookings.fetch_appointment(credentials, appointment_id)

    def fetch_client(self, credentials: Mapping[str, Any], client_id: str) -> Client:
        return bookings.fetch_client(credentials, client_id)

    def write_back(self, credentials: Mapping[str, Any], target: WriteBackTarget,
                   note: Note, *, delivery_id: str, occurred_at: datetime) -> WriteBackResult:
        return notes.write_back(credentials, target, note, delivery_id=delivery_id,
                                occurred_at=occurred_at)

    def write_booking_note(self, credentials: Mapping[str, Any], booking_id: str,
                           note: Note) -> bool:
        return notes.write_seller_note(credentials, booking_id, note)


PLATFORM = SquarePlatform()
