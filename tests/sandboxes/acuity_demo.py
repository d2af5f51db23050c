"""``rapport demo --platform acuity``: Sam's visit against the local Acuity.

Acuity delivers webhooks only to port 443 or 80, and the demo serves Rapport on a free
port, so the clinic is added with ``--manual-webhooks`` and the admin's paste into Acuity
is played; served on 443 or 80, Rapport registers the three webhooks itself. Acuity never
says "completed": Rapport reads the appointment (its webhooks name it only) and, its time
past and not cancelled, takes the visit as completed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.sandboxes.acuity import AcuitySandbox
from tests.sandboxes.acuity_state import SPEC
from tests.sandboxes.demo import NEXT_BOOKING_NOTES, OWN_NOTES, StandInDemo
from tests.sandboxes.openapi import shared_dir


class AcuityDemo(StandInDemo):
    platform = "acuity"
    title = "Acuity"
    command = ("rapport clinic add --name 'Harbour Massage' --platform acuity "
               "--user-id 11145481 --api-key … --manual-webhooks")

    @classmethod
    def unavailable(cls) -> str | None:
        folder = shared_dir()
        if folder is None or not (folder / SPEC).is_file():
            return (f"the Acuity stand-in answers by Acuity's specification ({SPEC}), kept in "
                    "shared/ beside the repository; set RAPPORT_SHARED_DIR to that folder")
        return None

    def start(self) -> str:
        self.acuity = AcuitySandbox(timezone="Europe/London").start()
        return self.acuity.base_url

    def stop(self) -> None:
        self.acuity.stop()

    def settings(self) -> dict[str, Any]:
        return {"ACUITY_BASE_URL": self.acuity.base_url}

    def connect_fields(self) -> dict[str, Any]:
        return {"user_id": self.acuity.user_id, "api_key": self.acuity.api_key,
                "manual_webhooks": True}

    def connected(self, shown: dict[str, Any]) -> list[str]:
        self.acuity.paste_webhook_url(shown["webhook_url"])
        return ["(The demo pastes it as the admin would. With Rapport served on port 443 or 80,",
                "`rapport clinic add` registers the webhooks itself through Acuity's API.)"]

    def book(self) -> list[str]:
        self.acuity.seed_client(first_name="Sam", last_name="Rivera", email="sam@example.com",
                                notes=OWN_NOTES)
        self.visit = self.acuity.seed_appointment(start=self.now - timedelta(minutes=90),
                                                  email="sam@example.com")
        answers = self.acuity.notify("scheduled", self.visit["id"])
        return [f"Sam's notes in Acuity: {OWN_NOTES!r}",
                f"Appointment {self.visit['id']}, {self.visit['datetime']}, "
                f"{self.visit['duration']} minutes",
                "action=scheduled&id=… (form, X-Acuity-Signature) → "
                + ", ".join(f"{a.status_code} {a.json().get('status')}" for a in answers),
                "Acuity's webhook names the appointment only: the worker reads it "
                "(GET /appointments/{id})."]

    def complete(self, clinic_id: int) -> list[str]:
        return ["Acuity never says \"completed\": the appointment read by the worker has ended",
                "and was neither cancelled nor marked a no-show, so the visit took place."]

    def book_next(self) -> list[str]:
        self.next_visit = self.acuity.seed_appointment(
            start=self.now + timedelta(days=7), email="sam@example.com",
            notes=NEXT_BOOKING_NOTES)
        answers = self.acuity.notify("scheduled", self.next_visit["id"])
        return [f"Appointment {self.next_visit['id']} on {self.next_visit['date']}, notes "
                f"{NEXT_BOOKING_NOTES!r}",
                "action=scheduled → " + ", ".join(str(a.status_code) for a in answers)]

    def client_notes(self) -> str:
        return self.acuity.client("Sam", "Rivera")["notes"]

    def next_booking_notes(self) -> str | None:
        return self.acuity.appointment(self.next_visit["id"])["notes"]

    def requests(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.acuity.requests]
