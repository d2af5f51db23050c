"""Mindbody as a :class:`~handlers.base.Platform`: its declaration, and how a clinic
connects — by its Mindbody site ID, once the business owner has approved Rapport's
application for that site (the activation link).

The calls themselves live in the package's other modules (see ``handlers/mindbody``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from handlers.base import (
    AdapterError,
    AppointmentEvent,
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
    Setting,
    Shown,
    Subscription,
    TransientError,
    Webhooks,
    WriteBackResult,
    WriteBackTarget,
    parse_instant,
)
from handlers.mindbody import api as api
from handlers.mindbody import appointments as appointments
from handlers.mindbody import install as install
from handlers.mindbody import notes as notes
from handlers.mindbody import webhooks as webhooks

SITE_ID = re.compile(r"-?\d{1,10}")
# What a clinic's sealed credentials hold; the installation's settings are added per call.
CLINIC_KEYS = ("site_id", "staff_username", "staff_password", "user_token",
               "user_token_expires", "user_token_issued_at")
# A stored user token is renewed this long before it expires.
RENEW_BEFORE = timedelta(hours=12)
ACTIVATION_CALL = "GET {base}/public/v6/site/activationcode (headers Api-Key and SiteId: {site})"


class MindbodyPlatform(Platform):
    name = "mindbody"
    title = "Mindbody"
    capabilities = Capabilities(
        completion=Completion.STATUS,
        note_places=frozenset({NotePlace.PROFILE_NOTE, NotePlace.NEXT_BOOKING}),
        connections=frozenset({Connection.API_KEY}),
        webhooks=frozenset({Webhooks.PER_APPLICATION}),
        # The staff user token the Public API's writes need, renewed before it expires.
        token_refresh=True,
        subscription=True,
        note_limit=2000,
        # Mindbody's documentation lists "Completed" among the statuses appointment events
        # carry, but integrators disagree on whether a visit checked out at the front desk
        # sends one; the appointment is also read at its end (webhooks.py, "Not confirmed").
        reread_at_end=True,
    )
    settings = (
        Setting("API_KEY", "the Public API key of Rapport's Mindbody developer account"),
        Setting("SOURCE_NAME", "the developer account's source name: with "
                "SOURCE_PASSWORD, the owner's user token for every activated site"),
        Setting("SOURCE_PASSWORD", "the developer account's source password"),
        Setting("WEBHOOKS_API_KEY", "the Webhooks API key (a separate key of the developer "
                "account), to create the application's subscription"),
        Setting("WEBHOOK_SIGNATURE_KEY", "the messageSignatureKey of a subscription created "
                "by hand", keys=True),
        Setting("NOTIFICATION_URL", "the application subscription's webhookUrl when it is "
                "not <RAPPORT_BASE_URL>/webhooks/mindbody"),
        Setting("BASE_URL", "replaces https://api.mindbodyonline.com, for a stand-in when "
                "testing; never in production"),
        Setting("WEBHOOKS_BASE_URL", "replaces https://push-api.mindbodyonline.com, for a "
                "stand-in when testing; never in production"),
    )
    connect_fields = (
        Field("site_id", "mindbody: the business's site ID (a number; -99 is Mindbody's "
              "sandbox).", label="Mindbody site ID"),
        Field("staff_username", "mindbody (optional): a staff login of the business, used "
              "instead of the application's source credentials.", label="Staff username"),
        Field("staff_password", "mindbody (optional): that staff member's password.",
              label="Staff password", secret=True),
    )
    update_fields = (
        Field("staff_username", "a staff login of the business for Rapport's writes.",
              label="Staff username", tried=True),
        Field("staff_password", "that staff member's password.", label="Staff password",
              secret=True, tried=True),
        Field("reconnect", "the owner approved Rapport for the site again: try the site and "
              "reconnect the clinic.", flag=True, tried=True,
              label="The owner approved Rapport again"),
    )
    connected_message = (
        "Rapport will now follow this clinic's Mindbody appointments. After each visit "
        "marked Completed the client gets a one-minute check-in, and the answers appear in "
        "the client's account notes in Mindbody, and in the notes of their next appointment.")

    # --- installation settings ------------------------------------------------------

    def api_context(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {name: settings.get(name)
                for name in ("api_key", "source_name", "source_password", "base_url")}

    # --- connecting -----------------------------------------------------------------

    def credentials_from(self, given: Mapping[str, Any],
                         settings: Mapping[str, Any]) -> dict[str, Any]:
        site = str(given.get("site_id") or "").strip()
        if not SITE_ID.fullmatch(site):
            raise ConnectProblem("--site-id is required for Mindbody: the business's site ID, "
                                 "a number (Mindbody shows it in the business's settings)")
        if not settings.get("api_key"):
            raise ConnectProblem("Mindbody is not set up on this Rapport: set "
                                 "RAPPORT_MINDBODY_API_KEY (docs/platforms/mindbody.md)")
        username, password = given.get("staff_username"), given.get("staff_password")
        if bool(username) != bool(password):
            raise ConnectProblem("give both --staff-username and --staff-password, or neither "
                                 "to use the application's source credentials")
        if not username and not (settings.get("source_name") and settings.get("source_password")):
            raise ConnectProblem(
                "Rapport needs a Mindbody login for this site: set RAPPORT_MINDBODY_SOURCE_NAME "
                "and RAPPORT_MINDBODY_SOURCE_PASSWORD, or give --staff-username and "
                "--staff-password")
        values = {"site_id": site}
        if username:
            values.update(staff_username=str(username), staff_password=str(password))
        return values

    def prepare_account(self, credentials: Mapping[str, Any]) -> None:
        """One call: a user token for the site, refused until the owner has approved
        Rapport and whenever the login is wrong."""
        install.try_site(credentials)

    def explain_refusal(self, error: Exception, credentials: Mapping[str, Any]) -> str:
        site = credentials.get("site_id")
        if isinstance(error, TransientError):
            return f"Mindbody did not answer ({error}); nothing was saved, try again later."
        try:
            found = install.activation(credentials)
        except AdapterError:
            found = {"code": "", "link": ""}
        where = (f"{found['link']} (activation code {found['code']})" if found["link"]
                 else "the activation link Mindbody gives for it, "
                 + ACTIVATION_CALL.format(base=api.PUBLIC_API, site=site))
        return (f"Mindbody refused Rapport for site {site} ({error}); nothing was saved. If the "
                f"business has not approved Rapport yet, its owner opens {where}, signed in "
                "to Mindbody, and approves it; then run the same command again. If a staff "
                "login was given, check it.")

    def shown(self, credentials: Mapping[str, Any]) -> list[Shown]:
        return [Shown("site_id", "Mindbody site ID:", str(credentials["site_id"]))]

    def next_steps(self, credentials: Mapping[str, Any], clinic_key: str) -> list[str]:
        site = credentials["site_id"]
        return [
            "",
            f"Mindbody site {site} has approved Rapport. Its appointment events reach",
            "Rapport's application subscription (/webhooks/mindbody) and are routed by site ID;",
            "there is nothing to paste. Each visit the front desk marks Completed (checkout)",
            "gets its check-in.",
            "Should the owner ever remove Rapport from the site, the activation link to approve",
            "it again is the answer to",
            "  " + ACTIVATION_CALL.format(base=api.PUBLIC_API, site=site),
            "which `rapport clinic add` prints whenever Mindbody refuses the site. Send yourself",
            f"a test with `rapport clinic send-test {clinic_key} --to you@example.com`.",
        ]

    def reconnect_hint(self, credentials: Mapping[str, Any], clinic_key: str) -> str:
        return ("have the business owner approve Rapport for the site again (its activation "
                "link: " + ACTIVATION_CALL.format(base=api.PUBLIC_API,
                                                  site=credentials.get("site_id"))
                + f"), then run: rapport clinic mindbody {clinic_key} --reconnect; or give a "
                f"staff login: rapport clinic mindbody {clinic_key} "
                "--staff-username USER --staff-password PASSWORD")

    def updated_credentials(self, credentials: Mapping[str, Any],
                            given: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        username, password = given.get("staff_username"), given.get("staff_password")
        if given.get("reconnect") and not (username or password):
            # The same credentials, tried again: a token Mindbody refused is not kept.
            kept = {key: value for key, value in credentials.items()
                    if not key.startswith("user_token")}
            return kept, f"Mindbody accepts Rapport for site {credentials.get('site_id')} again."
        if not (username and password):
            raise ConnectProblem("give both --staff-username and --staff-password, or "
                                 "--reconnect once the owner approved Rapport again")
        values = {key: credentials[key] for key in ("site_id",) if key in credentials}
        values.update(staff_username=str(username), staff_password=str(password))
        return values, f"Rapport now writes to Mindbody as {username}."

    def account_id_of(self, credentials: Mapping[str, Any]) -> str | None:
        return str(credentials["site_id"]) if credentials.get("site_id") else None

    # The staff user token (token_refresh)

    def needs_refresh(self, credentials: Mapping[str, Any], now: datetime) -> bool:
        expires = parse_instant(credentials.get("user_token_expires"))
        return not credentials.get("user_token") or expires is None or (
            expires - RENEW_BEFORE <= now)

    def refresh(self, credentials: Mapping[str, Any],
                settings: Mapping[str, Any]) -> dict[str, Any]:
        calling = {**credentials, **self.api_context(settings)}
        for name in ("timeout", "http"):
            if credentials.get(name) is not None:
                calling[name] = credentials[name]
        token, expires = api.issue_token(calling)
        kept = {key: credentials[key] for key in CLINIC_KEYS if key in credentials}
        return {**kept, "user_token": token, "user_token_expires": expires.isoformat(),
                "user_token_issued_at": datetime.now(expires.tzinfo).isoformat()}

    def token_issued_at(self, credentials: Mapping[str, Any]) -> datetime | None:
        return parse_instant(credentials.get("user_token_issued_at"))

    # The application's subscription

    def application_notification_url(self, settings: Mapping[str, Any]) -> str | None:
        return settings.get("notification_url") or None

    def application_signature_keys(self, settings: Mapping[str, Any]) -> list[str]:
        keys = settings.get("webhook_signature_key") or []
        return [keys] if isinstance(keys, str) else list(keys)

    def subscribe_application(self, settings: Mapping[str, Any], url: str) -> Subscription:
        if not settings.get("webhooks_api_key"):
            raise ConnectProblem(
                "Rapport needs a Mindbody webhook subscription to hear about appointments: set "
                "RAPPORT_MINDBODY_WEBHOOKS_API_KEY so Rapport creates and activates it, or "
                "create it with the Webhooks API (events "
                f"{', '.join(webhooks.EVENT_TYPES)}, webhookUrl {url}), activate it, and set "
                "RAPPORT_MINDBODY_WEBHOOK_SIGNATURE_KEY to its messageSignatureKey")
        return install.subscribe(settings, url)

    # --- receiving -------------------------------------------------------------------

    def verify(self, request: InboundRequest, credentials: Mapping[str, Any]) -> None:
        webhooks.verify(request, credentials)

    def delivery_id(self, request: InboundRequest) -> str:
        return webhooks.delivery_id(request)

    def parse(self, request: InboundRequest) -> list[AppointmentEvent]:
        return webhooks.parse(request)

    def account_id(self, request: InboundRequest) -> str | None:
        return webhooks.site_id(request)

    # --- reading and writing ----------------------------------------------------------

    def fetch_appointment(self, credentials: Mapping[str, Any],
                          appointment_id: str) -> AppointmentEvent:
        return appointments.fetch_appointment(credentials, appointment_id)

    def fetch_client(self, credentials: Mapping[str, Any], client_id: str) -> Client:
        return appointments.fetch_client(credentials, client_id)

    def write_back(self, credentials: Mapping[str, Any], target: WriteBackTarget,
                   note: Note, *, delivery_id: str, occurred_at: datetime) -> WriteBackResult:
        return notes.write_back(credentials, target, note, delivery_id=delivery_id,
                                occurred_at=occurred_at)

    def write_booking_note(self, credentials: Mapping[str, Any], booking_id: str,
                           note: Note) -> bool:
        return notes.write_booking_note(credentials, booking_id, note)


PLATFORM = MindbodyPlatform()
