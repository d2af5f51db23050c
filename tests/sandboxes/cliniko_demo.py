"""``rapport demo --platform cliniko``: Sam's visit against the local Cliniko.

Cliniko sends no webhooks: Rapport asks it what changed, every few minutes, and stores
each appointment it read in its inbox as a delivery (handlers/cliniko/polling.py), from
where the journey is the same as any platform's. A visit still standing once it has ended
is read as completed; the answers go into Sam's patient notes and the notes of Sam's next
appointment.

:meth:`ClinikoDemo.poll_round` polls as ``rapport clinic poll`` does (the seam's
``plugin.pipeline.polling.poll``); the second round is told it runs five minutes later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from plugin.pipeline import polling as seam_polling
from plugin.store import database
from plugin.store.models import Clinic
from tests.sandboxes.cliniko import ClinikoSandbox
from tests.sandboxes.demo import NEXT_BOOKING_NOTES, OWN_NOTES, StandInDemo


class ClinikoDemo(StandInDemo):
    platform = "cliniko"
    title = "Cliniko"
    command = "rapport clinic add --name 'Harbour Massage' --platform cliniko --api-key …-au1"

    def start(self) -> str:
        self.cliniko = ClinikoSandbox().start()
        return self.cliniko.url

    def stop(self) -> None:
        self.cliniko.stop()

    def settings(self) -> dict[str, Any]:
        given = self.cliniko.settings()
        # The visit ended half an hour before the clinic is added: the first poll looks
        # back three hours (a clinic connected this morning), or Sam would get no check-in.
        return {"CLINIKO_BASE_URL": given["base_url"],
                "CLINIKO_CONTACT_EMAIL": given["contact_email"],
                "CLINIKO_COMPLETION_GRACE_MINUTES": "0", "POLL_HORIZON_HOURS": 3}

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
        """One round of the seam's poll (``rapport clinic poll``), and the rounds that
        follow while Cliniko says more is waiting: how many deliveries were stored, and how
        many requests it took."""
        stored = calls = 0
        while True:
            outcome = seam_polling.poll(clinic_id, now=now, force=True)
            stored, calls = stored + outcome.stored, calls + outcome.calls
            if not outcome.more:
                return stored, calls

    def _clinic_id(self) -> int:
        with database.session() as db:
            return db.query(Clinic.id).one()[0]
