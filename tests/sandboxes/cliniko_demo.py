"""``rapport demo --platform cliniko``: Sam's visit against the local Cliniko.

Cliniko sends no webhooks: Rapport asks it what changed, every few minutes, and stores
each appointment it read in its inbox as a delivery (handlers/cliniko/polling.py), from
where the journey is the same as any platform's. A visit still standing once it has ended
is read as completed; the answers go into Sam's patient notes and the notes of Sam's next
appointment.

The seam's periodic poll job is not on this branch yet: :meth:`ClinikoDemo.poll_round`
does one round the way that job is to (the adapter's ``poll``, each delivery stored in
the inbox as the receiver stores a webhook's; the second round is told it runs five
minutes later). When the job lands, call it there instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app

from handlers.base import IgnoredEvent, event_to_dict
from handlers.cliniko import polling
from plugin.clinics.platforms import credentials_for, platform_of
from plugin.store import database
from plugin.store.models import Clinic
from plugin.web import inbox
from plugin.web.receiver import dedupe_key
from tests.sandboxes.cliniko import ClinikoSandbox
from tests.sandboxes.demo import NEXT_BOOKING_NOTES, OWN_NOTES, StandInDemo


class ClinikoDemo(StandInDemo):
    platform = "cliniko"
    title = "Cliniko"
    command = "rapport clinic add --name 'Harbour Massage' --platform cliniko --api-key …-au1"

    def start(self) -> str:
        self.cliniko = ClinikoSandbox().start()
        # The clinic was connected this morning: visits ending since then are followed.
        self.since = self.now - timedelta(hours=3)
        self.cursor: str | None = None
        return self.cliniko.url

    def stop(self) -> None:
        self.cliniko.stop()

    def settings(self) -> dict[str, Any]:
        given = self.cliniko.settings()
        return {"CLINIKO_BASE_URL": given["base_url"],
                "CLINIKO_CONTACT_EMAIL": given["contact_email"],
                "CLINIKO_COMPLETION_GRACE_MINUTES": "0"}

    def connect_fields(self) -> dict[str, Any]:
        return {"api_key": self.cliniko.api_key}

    def book(self) -> list[str]:
        self.sam = self.cliniko.seed_patient(first_name="Sam", last_name="Rivers",
                                             email="sam@example.com", notes=OWN_NOTES)
        start = self.now - timedelta(minutes=90)
        self.visit = self.cliniko.seed_appointment(patient=self.sam, starts_at=start,
                                                   updated_at=start - timedelta(days=2))
        return [f"Sam's patient notes in Cliniko: {OWN_NOTES!r}",
                f"Appointment {self.visit['id']}, {start:%Y-%m-%d %H:%M} UTC, 60 minutes",
                "Cliniko sends no webhook: nothing is delivered; Rapport will ask."]

    def complete(self, clinic_id: int) -> list[str]:
        stored, calls = self.poll_round(clinic_id)
        return ["Rapport polls Cliniko (every 5 minutes in a running Rapport): "
                f"{calls} request(s),",
                f"{stored} appointment(s) stored in the inbox. Sam's has ended and still stands",
                "(no \"did not arrive\", not cancelled): the visit took place."]

    def book_next(self) -> list[str]:
        booked_at = datetime.now(UTC).replace(microsecond=0)
        self.next_visit = self.cliniko.seed_appointment(
            patient=self.sam, starts_at=self.now + timedelta(days=7), notes=NEXT_BOOKING_NOTES,
            updated_at=booked_at)
        # The next poll, five minutes on: a booking is read once it has settled in Cliniko.
        self.cliniko.clock.advance(minutes=5)
        stored, calls = self.poll_round(self._clinic_id(), now=booked_at + timedelta(minutes=5))
        return [f"Appointment {self.next_visit['id']} a week ahead, notes "
                f"{NEXT_BOOKING_NOTES!r}",
                f"The next poll, five minutes on: {calls} request(s), {stored} appointment(s) "
                "stored."]

    def client_notes(self) -> str:
        return self.cliniko.patients[self.sam["id"]]["notes"] or ""

    def next_booking_notes(self) -> str | None:
        return self.cliniko.appointments[self.next_visit["id"]]["notes"]

    def requests(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.cliniko.requests]

    def poll_round(self, clinic_id: int, now: datetime | None = None) -> tuple[int, int]:
        """One poll of the clinic, its deliveries stored in the inbox: how many, and how
        many requests it took. (The seam's poll job, once on this branch, replaces this.)"""
        with database.session() as db:
            clinic = db.get(Clinic, clinic_id)
            platform, credentials = platform_of(clinic), credentials_for(clinic)
        stored = calls = 0
        while True:
            page = polling.poll(credentials, self.cursor, since=self.since, now=now)
            self.cursor, calls = page.cursor, calls + page.calls
            for request in page.deliveries:
                try:
                    events = [event_to_dict(event) for event in platform.parse(request)]
                except IgnoredEvent:
                    continue
                kept = inbox.inbox(current_app).store(
                    clinic_id=clinic_id, delivery_id=dedupe_key(platform.delivery_id(request)),
                    body=request.body, headers=dict(request.headers), events=events)
                stored += kept is not None
            if not page.more:
                return stored, calls

    def _clinic_id(self) -> int:
        with database.session() as db:
            return db.query(Clinic.id).one()[0]
