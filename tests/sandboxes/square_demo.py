"""``rapport demo --platform square``: Sam's visit against the local Square.

The clinic is connected by hand (an access token and a webhook subscription made in
Square's console: ``--access-token``, ``--webhook-signature-key``, ``--notification-url``);
a live install signs in through Square instead (docs/platforms/square.md). Square never
says "completed": Rapport reads the booking once it has ended and, still accepted, takes
the visit as completed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.sandboxes.demo import NEXT_BOOKING_NOTES, OWN_NOTES, StandInDemo
from tests.sandboxes.openapi import shared_dir
from tests.sandboxes.square import SquareSandbox
from tests.sandboxes.square_state import SPEC

SIGNATURE_KEY = "harbour-demo-signature-key"


class SquareDemo(StandInDemo):
    platform = "square"
    title = "Square"
    command = ("rapport clinic add --name 'Harbour Massage' --platform square "
               "--access-token … --webhook-signature-key … --notification-url …/harbour")

    @classmethod
    def unavailable(cls) -> str | None:
        folder = shared_dir()
        if folder is None or not (folder / SPEC).is_file():
            return (f"the Square stand-in answers by Square's specification ({SPEC}), kept in "
                    "shared/ beside the repository; set RAPPORT_SHARED_DIR to that folder")
        return None

    def start(self) -> str:
        self.square = SquareSandbox().start()
        return self.square.base_url

    def stop(self) -> None:
        self.square.stop()

    def settings(self) -> dict[str, Any]:
        return {"SQUARE_ENVIRONMENT": "sandbox", "SQUARE_BASE_URL": self.square.base_url}

    @property
    def notification_url(self) -> str:
        return f"{self.rapport_url}/webhooks/square/harbour"

    def connect_fields(self) -> dict[str, Any]:
        return {"access_token": self.square.personal_access_token,
                "webhook_signature_key": SIGNATURE_KEY,
                "notification_url": self.notification_url}

    def book(self) -> list[str]:
        self.sam = self.square.seed_customer(given_name="Sam", email_address="sam@example.com",
                                             note=OWN_NOTES)
        self.visit = self.square.seed_booking(customer_id=self.sam["id"],
                                              start_at=self.now - timedelta(minutes=90))
        return [f"Sam's note in Square: {OWN_NOTES!r}",
                f"Booking {self.visit['id']}, {self.visit['start_at']}, 60 minutes, ACCEPTED",
                f"booking.created (x-square-hmacsha256-signature) → {self._send(self.visit)}"]

    def complete(self, clinic_id: int) -> list[str]:
        return ["Square never says \"completed\": at the booking's end (plus the clinic's",
                "grace) the worker reads it again (GET /v2/bookings/{id}); still ACCEPTED,",
                "the visit took place."]

    def book_next(self) -> list[str]:
        self.next_visit = self.square.seed_booking(
            customer_id=self.sam["id"], start_at=self.now + timedelta(days=7),
            seller_note=NEXT_BOOKING_NOTES)
        return [f"Booking {self.next_visit['id']} on {self.next_visit['start_at'][:10]}, seller "
                f"note {NEXT_BOOKING_NOTES!r}",
                f"booking.created → {self._send(self.next_visit)}"]

    def client_notes(self) -> str:
        return self.square.customer(self.sam["id"]).get("note") or ""

    def next_booking_notes(self) -> str | None:
        return self.square.booking(self.next_visit["id"]).get("seller_note")

    def requests(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.square.requests]

    def _send(self, booking: dict[str, Any]) -> str:
        answer = self.square.deliver(self.notification_url,
                                     self.square.booking_event("booking.created", booking["id"]),
                                     signature_key=SIGNATURE_KEY,
                                     notification_url=self.notification_url)
        return f"{answer.status_code} {answer.json().get('status')}"
