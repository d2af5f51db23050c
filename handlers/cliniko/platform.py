"""Cliniko as a :class:`~handlers.base.Platform`: its declaration, and how a clinic
connects — with an API key of one of its Cliniko users (My Info → Manage API keys).

The calls themselves live in the package's other modules (see ``handlers/cliniko``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from handlers.base import (
    AppointmentEvent,
    AuthError,
    Capabilities,
    Client,
    Completion,
    Connection,
    ConnectProblem,
    Field,
    InboundRequest,
    MissingPermission,
    Note,
    NotePlace,
    Platform,
    PollPage,
    Setting,
    Shown,
    TransientError,
    WriteBackResult,
    WriteBackTarget,
)
from handlers.cliniko import api, appointments, deliveries, notes, patients, polling

POLL_MINUTES = int(polling.POLL_INTERVAL.total_seconds() // 60)


class ClinikoPlatform(Platform):
    name = "cliniko"
    title = "Cliniko"
    capabilities = Capabilities(
        completion=Completion.POLLING,
        note_places=frozenset({NotePlace.PROFILE_NOTE, NotePlace.NEXT_BOOKING}),
        connections=frozenset({Connection.API_KEY}),
        webhooks=frozenset(),
        note_limit=2000,
        requests_per_minute=200,
        poll_requests_per_minute=polling.CALLS_PER_MINUTE,
    )
    settings = (
        Setting("CONTACT_EMAIL", "an email address Cliniko can reach this Rapport's operators "
                "at: sent in the User-Agent of every request, which Cliniko requires"),
        Setting("COMPLETION_GRACE_MINUTES", "minutes after a visit's end before Rapport "
                "takes it as completed (time to mark \"did not arrive\")", default="15"),
        Setting("BASE_URL", "replaces Cliniko's API host, for a stand-in when testing "
                "({shard} stands for the API key's shard); never in production"),
    )
    connect_fields = (
        Field("api_key", "cliniko: an API key of a Cliniko user who may see and edit "
              "patients and appointments (My Info → Manage API keys).",
              label="API key", secret=True),
    )
    update_fields = (
        Field("api_key", "a new Cliniko API key (tried before it replaces the old one).",
              label="API key", secret=True, tried=True),
    )
    connected_message = (
        "Rapport will now follow this clinic's Cliniko appointments, checking for changes "
        f"every {POLL_MINUTES} minutes. After each completed visit the client gets a "
        "one-minute check-in, and the answers appear in the patient's notes in Cliniko.")

    # --- installation settings ------------------------------------------------------

    def api_context(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        grace = str(settings.get("completion_grace_minutes") or "15").strip()
        if not grace.isdigit():
            raise ConnectProblem(
                "RAPPORT_CLINIKO_COMPLETION_GRACE_MINUTES must be a whole number of minutes, "
                f"not {grace!r}")
        return {"contact_email": settings.get("contact_email"),
                "completion_grace_minutes": int(grace),
                "base_url": settings.get("base_url") or None}

    # --- connecting -----------------------------------------------------------------

    def credentials_from(self, given: Mapping[str, Any],
                         settings: Mapping[str, Any]) -> dict[str, Any]:
        if not api.CONTACT_EMAIL.match((settings.get("contact_email") or "").strip()):
            raise ConnectProblem(
                "Cliniko needs a contact email in every request: set "
                "RAPPORT_CLINIKO_CONTACT_EMAIL to an address Cliniko can reach you at")
        return {"api_key": _api_key(given.get("api_key"))}

    def prepare_account(self, credentials: Mapping[str, Any]) -> None:
        # One cheap call: the user the key belongs to.
        api.call(credentials, "GET", "/user")

    def explain_refusal(self, error: Exception, credentials: Mapping[str, Any]) -> str:
        if isinstance(error, TransientError):
            return f"Cliniko did not answer ({error}); nothing was saved, try again later."
        if isinstance(error, AuthError):
            return (f"Cliniko refused the API key ({error}). Check that it was copied whole, "
                    "ending in its shard (such as -au1 or -uk1), and that its user is still "
                    "active in Cliniko; nothing was saved.")
        if isinstance(error, MissingPermission):
            return (f"Cliniko refused the API key's user ({error}): give the key of a user "
                    "who may see and edit patients; nothing was saved.")
        return f"Cliniko refused the API key ({error}); nothing was saved."

    def shown(self, credentials: Mapping[str, Any]) -> list[Shown]:
        return [Shown("shard", "Cliniko shard:", api.shard_of(credentials)),
                Shown("checks", "Checked for changes:", f"every {POLL_MINUTES} minutes")]

    def next_steps(self, credentials: Mapping[str, Any], clinic_key: str) -> list[str]:
        return [
            "",
            "Cliniko has no webhooks: there is nothing to set up in Cliniko. Rapport asks it",
            f"what changed every {POLL_MINUTES} minutes, for visits ending from now on (past",
            "visits never get a check-in). Send yourself a test with",
            f"`rapport clinic send-test {clinic_key} --to you@example.com`.",
        ]

    def reconnect_hint(self, credentials: Mapping[str, Any], clinic_key: str) -> str:
        return ("create a new API key in Cliniko (My Info → Manage API keys) and run: "
                f"rapport clinic cliniko {clinic_key} --api-key NEW")

    def updated_credentials(self, credentials: Mapping[str, Any],
                            given: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        if not given.get("api_key"):
            raise ConnectProblem("give the new key: --api-key NEW")
        values = {**credentials, "api_key": _api_key(given["api_key"])}
        return values, f"The new API key is used from now on (shard {api.shard_of(values)})."

    # --- receiving -------------------------------------------------------------------

    def delivery_id(self, request: InboundRequest) -> str:
        return deliveries.delivery_id(request)

    def parse(self, request: InboundRequest) -> list[AppointmentEvent]:
        return deliveries.parse(request)

    def poll(self, credentials: Mapping[str, Any], cursor: str | None, *,
             since: datetime, now: datetime | None = None) -> PollPage:
        return polling.poll(credentials, cursor, since=since, now=now)

    # --- reading and writing ----------------------------------------------------------

    def fetch_appointment(self, credentials: Mapping[str, Any],
                          appointment_id: str) -> AppointmentEvent:
        return appointments.fetch_appointment(credentials, appointment_id)

    def fetch_client(self, credentials: Mapping[str, Any], client_id: str) -> Client:
        return patients.fetch_client(credentials, client_id)

    def write_back(self, credentials: Mapping[str, Any], target: WriteBackTarget,
                   note: Note, *, delivery_id: str, occurred_at: datetime) -> WriteBackResult:
        return notes.write_back(credentials, target, note, delivery_id=delivery_id,
                                occurred_at=occurred_at)

    def write_booking_note(self, credentials: Mapping[str, Any], booking_id: str,
                           note: Note) -> bool:
        return notes.write_booking_note(credentials, booking_id, note)


def _api_key(value: Any) -> str:
    if not str(value or "").strip():
        raise ConnectProblem("--api-key is required for Cliniko: create one in Cliniko, "
                             "signed in as the user Rapport acts as (My Info → Manage API keys)")
    try:
        key, _shard = api.split_key(str(value or ""))
    except api.InvalidKey as error:
        raise ConnectProblem(f"--api-key: {error}") from None
    return key


PLATFORM = ClinikoPlatform()
