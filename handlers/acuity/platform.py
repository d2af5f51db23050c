"""Acuity Scheduling as a :class:`~handlers.base.Platform`: its declaration, and how a clinic
connects — with its Acuity user ID and API key, Rapport registering the clinic's webhook URL
through Acuity's Webhooks API (or the admin pasting it in Acuity, ``--manual-webhooks``).

Where in Acuity: the user ID and API key are under Integrations → API → View credentials;
static webhooks under Integrations → API → Webhooks ("Set Up"), one field per action.
https://developers.acuityscheduling.com/docs/webhooks ("Under Integrations set the Webhook
integration"), and integrators' set-up guides, e.g.
https://welkinhealth.com/kb/acuity-settings/ (not Acuity's own; the labels may differ).

The calls themselves live in the package's other modules (see ``handlers/acuity``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from handlers.acuity import appointments, install, notes, webhooks
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
    Setting,
    Shown,
    TransientError,
    Webhooks,
    WriteBackResult,
    WriteBackTarget,
)

CREDENTIALS_PLACE = "Acuity → Integrations → API → View credentials"
WEBHOOKS_PLACE = "Acuity → Integrations → API → Webhooks (Set Up)"


class AcuityPlatform(Platform):
    name = "acuity"
    title = "Acuity Scheduling"
    capabilities = Capabilities(
        completion=Completion.END_TIME,
        note_places=frozenset({NotePlace.PROFILE_NOTE, NotePlace.NEXT_BOOKING}),
        connections=frozenset({Connection.API_KEY}),
        webhooks=frozenset({Webhooks.PER_CLINIC}),
        subscription=True,
        # Rapport's block; the whole notes field is kept under notes.NOTES_LIMIT (4000),
        # so half of it stays the therapist's.
        note_limit=2000,
        business_locale=True,
        events_name_only=True,
        # "10 requests a second and 20 concurrent connections from an IP": per IP, so every
        # clinic Rapport serves shares it.
        requests_per_minute=600,
    )
    settings = (
        Setting("BASE_URL", "replaces Acuity's API host (https://acuityscheduling.com) with "
                "a stand-in when testing; never set in production"),
    )
    connect_fields = (
        Field("user_id", f"acuity: the numeric user ID ({CREDENTIALS_PLACE}).",
              label="Acuity user ID"),
        Field("api_key", "acuity: the API key shown beside the user ID.",
              label="Acuity API key", secret=True),
        Field("manual_webhooks", "acuity: paste the webhook URL in Acuity yourself instead of "
              "Rapport registering it through Acuity's API.", flag=True,
              label="I will paste the webhook URL in Acuity myself"),
    )
    update_fields = (
        Field("api_key", "a new Acuity API key (after regenerating it in Acuity); webhooks "
              "signed with the old one are accepted until --retire-old-keys.",
              label="New API key", secret=True, tried=True),
        Field("retire_old_keys", "Accept webhooks signed with the current API key only.",
              flag=True, label="Accept only the current API key"),
    )
    connected_message = (
        "Rapport will now follow this clinic's Acuity appointments. After each visit the "
        "client gets a one-minute check-in, and the answers appear in Acuity, in the client's "
        "notes (or the visit's) and in the notes of their next appointment.")

    # --- installation settings ------------------------------------------------------

    def api_context(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {"base_url": settings.get("base_url") or None}

    # --- connecting -----------------------------------------------------------------

    def credentials_from(self, given: Mapping[str, Any],
                         settings: Mapping[str, Any]) -> dict[str, Any]:
        user_id = str(given.get("user_id") or "").strip()
        api_key = str(given.get("api_key") or "").strip()
        missing = [option for option, value in (("--user-id", user_id), ("--api-key", api_key))
                   if not value]
        if missing:
            raise ConnectProblem(
                f"{' and '.join(missing)} required for Acuity: copy the user ID and API key "
                f"from {CREDENTIALS_PLACE}")
        if not re.fullmatch(r"[0-9]{1,20}", user_id):
            raise ConnectProblem(
                f"--user-id must be Acuity's numeric user ID ({CREDENTIALS_PLACE}), "
                f"not {user_id[:40]!r}")
        return {"user_id": user_id, "api_key": api_key, "previous_api_keys": [],
                "manual_webhooks": bool(given.get("manual_webhooks"))}

    def prepare_account(self, credentials: Mapping[str, Any]) -> None:
        """Open the account with the credentials (``GET /me``, one call): a wrong user ID or
        API key is said at once, before anything is saved."""
        install.account(credentials)

    def explain_refusal(self, error: Exception, credentials: Mapping[str, Any]) -> str:
        if isinstance(error, AuthError):
            return (f"Acuity refused user ID {credentials.get('user_id')} with this API key "
                    f"({error}). Copy both again from {CREDENTIALS_PLACE}; nothing was saved.")
        if isinstance(error, TransientError):
            return (f"Acuity did not answer ({error}); nothing was saved, try again in a few "
                    "minutes.")
        return (f"Acuity refused the account ({error}); nothing was saved. Acuity offers its "
                "API on some plans only: check the account's plan.")

    def subscribe_clinic(self, credentials: Mapping[str, Any], url: str) -> dict[str, Any]:
        """Register ``url`` for new, rescheduled and cancelled appointments; keep the
        answer's ``webhook_ids`` and ``webhook_url`` with the clinic's credentials. Nothing
        for a clinic added with ``--manual-webhooks``."""
        if credentials.get("manual_webhooks"):
            return {}
        return install.subscribe(credentials, url)

    def shown(self, credentials: Mapping[str, Any]) -> list[Shown]:
        if credentials.get("webhook_ids"):
            return []
        return [Shown("acuity_webhooks_place", "Paste the webhook URL in:", WEBHOOKS_PLACE)]

    def next_steps(self, credentials: Mapping[str, Any], clinic_key: str) -> list[str]:
        test = (f"Send yourself a test with `rapport clinic send-test {clinic_key} "
                "--to you@example.com`.")
        if credentials.get("webhook_ids"):
            return [
                "",
                "Rapport registered the webhook URL in Acuity itself (Acuity's Webhooks API: new,",
                "rescheduled and canceled appointments); there is nothing to paste.",
                test,
            ]
        return [
            "",
            f"Next: in {WEBHOOKS_PLACE}, signed in as the account's main admin, paste the",
            "webhook URL above into the fields for a scheduled, a rescheduled and a canceled",
            "appointment, and save. Leave the field for any change ('changed') empty: with it",
            "Acuity sends each event twice. Acuity signs these with the main admin's API key,",
            "so the clinic must be connected with the main admin's user ID and API key.",
            test,
        ]

    def reconnect_hint(self, credentials: Mapping[str, Any], clinic_key: str) -> str:
        return (f"copy the API key again from {CREDENTIALS_PLACE} (regenerate it if it was "
                f"exposed) and run: rapport clinic acuity {clinic_key} --api-key NEW")

    def updated_credentials(self, credentials: Mapping[str, Any],
                            given: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        new_key = str(given.get("api_key") or "").strip()
        if not new_key and not given.get("retire_old_keys"):
            raise ConnectProblem("give --api-key NEW, or --retire-old-keys")
        values = dict(credentials)
        previous = list(values.get("previous_api_keys") or [])
        if new_key and new_key != values.get("api_key"):
            # The replaced key still verifies deliveries Acuity signed before the change.
            previous = [key for key in [values.get("api_key"), *previous]
                        if key and key != new_key][:4]
            values["api_key"] = new_key
        if given.get("retire_old_keys"):
            previous = []
        values["previous_api_keys"] = previous
        count = len(webhooks.signing_keys(values))
        return values, f"{count} API key(s) accepted for webhook signatures."

    def business_locale(self, credentials: Mapping[str, Any]) -> BusinessLocale:
        """The account's time zone (``GET /me``); Acuity says nothing of a language."""
        return BusinessLocale(timezone=install.timezone_of(credentials), language=None)

    # --- receiving -------------------------------------------------------------------

    def verify(self, request: InboundRequest, credentials: Mapping[str, Any]) -> None:
        webhooks.verify(request, credentials)

    def delivery_id(self, request: InboundRequest) -> str:
        return webhooks.delivery_id(request)

    def parse(self, request: InboundRequest) -> list[AppointmentEvent]:
        return webhooks.parse(request)

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


PLATFORM = AcuityPlatform()
