"""``rapport demo --platform mindbody``: Sam's visit against the local Mindbody.

Rapport creates and activates its application subscription as the clinic is added (the
stand-in checks the URL with HEAD first, as Mindbody does); the front desk marks the visit
Completed and Mindbody delivers the signed event; the answers go into Sam's account notes
and the notes of Sam's next appointment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from handlers.mindbody import api
from tests.sandboxes.demo import NEXT_BOOKING_NOTES, OWN_NOTES, StandInDemo
from tests.sandboxes.mindbody import MindbodySandbox

SITE = "-99"


class MindbodyDemo(StandInDemo):
    platform = "mindbody"
    title = "Mindbody"
    command = "rapport clinic add --name 'Harbour Massage' --platform mindbody --site-id -99"

    def start(self) -> str:
        api.forget_tokens()
        self.mindbody = MindbodySandbox(site_id=SITE, check_urls=True).start()
        return self.mindbody.base_url

    def stop(self) -> None:
        self.mindbody.stop()

    def settings(self) -> dict[str, Any]:
        mb = self.mindbody
        return {"MINDBODY_API_KEY": mb.api_key, "MINDBODY_SOURCE_NAME": mb.source_name,
                "MINDBODY_SOURCE_PASSWORD": mb.source_password,
                "MINDBODY_WEBHOOKS_API_KEY": mb.webhooks_api_key,
                "MINDBODY_BASE_URL": mb.base_url, "MINDBODY_WEBHOOKS_BASE_URL": mb.base_url}

    def connect_fields(self) -> dict[str, Any]:
        return {"site_id": SITE}

    def connected(self, shown: dict[str, Any]) -> list[str]:
        (subscription,) = self.mindbody.subscriptions.values()
        checks = ", ".join(f"HEAD → {status}" for _url, status in self.mindbody.url_checks)
        return [f"Mindbody subscription {subscription['subscriptionId'][:8]}…: "
                f"{subscription['status']} (URL checked: {checks})"]

    def book(self) -> list[str]:
        self.sam = self.mindbody.seed_client(SITE, first_name="Sam", email="sam@example.com",
                                             notes=OWN_NOTES)
        start = self.now - timedelta(minutes=90)
        self.visit = self.mindbody.seed_appointment(SITE, client_id=self.sam["Id"],
                                                    start=start, status="Booked")
        answer = self._send("appointmentBooking.created", self.visit)
        return [f"Sam's notes in Mindbody: {OWN_NOTES!r}",
                f"Appointment {self.visit['Id']}, {self.visit['StartDateTime']} to "
                f"{self.visit['EndDateTime']} (site time), status Booked",
                f"appointmentBooking.created (signed, X-Mindbody-Signature) → {answer}"]

    def complete(self, clinic_id: int) -> list[str]:
        self.mindbody.edit_appointment(SITE, self.visit["Id"], Status="Completed")
        answer = self._send("appointmentBooking.updated", self.visit)
        return ["The front desk checks Sam out: the appointment is Completed in Mindbody.",
                f"appointmentBooking.updated, status Completed → {answer}",
                "(The event carries Sam's name and email: nothing needs reading.)"]

    def book_next(self) -> list[str]:
        self.next_visit = self.mindbody.seed_appointment(
            SITE, client_id=self.sam["Id"], start=self.now + timedelta(days=7),
            status="Booked", notes=NEXT_BOOKING_NOTES)
        answer = self._send("appointmentBooking.created", self.next_visit)
        return [f"Appointment {self.next_visit['Id']} on {self.next_visit['StartDateTime'][:10]}, "
                f"notes {NEXT_BOOKING_NOTES!r}", f"appointmentBooking.created → {answer}"]

    def client_notes(self) -> str:
        return self.mindbody.client(SITE, self.sam["Id"])["Notes"]

    def next_booking_notes(self) -> str | None:
        return self.mindbody.appointment(SITE, self.next_visit["Id"])["Notes"]

    def requests(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.mindbody.requests]

    def _send(self, event_type: str, visit: dict[str, Any]) -> str:
        (subscription,) = self.mindbody.subscriptions.values()
        answer = self.mindbody.deliver(
            subscription["webhookUrl"], self.mindbody.event(event_type, SITE, visit["Id"]),
            signature_key=subscription["messageSignatureKey"])
        return f"{answer.status_code} {answer.json().get('status')}"
