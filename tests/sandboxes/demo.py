"""What ``rapport demo --platform NAME`` asks of a platform's stand-in demo.

The demo driver (``plugin/demo/stand_ins.py``) runs Redis, the mail catcher and Rapport,
adds the clinic with ``connecting.add`` exactly as ``rapport clinic add`` does, and runs
the worker; the stand-in demo plays the clinic and its booking platform: it starts the
stand-in, says which settings point Rapport at it, books Sam's visit and delivers what the
platform would, and shows what the platform holds afterwards. Every method that acts
returns the lines to print, plainly.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

# The therapist's own notes on Sam, which Rapport must keep byte for byte.
OWN_NOTES = "Prefers firm pressure on the back.\nLeft shoulder: an old injury, go gently."
NEXT_BOOKING_NOTES = "Room 2, please."


class StandInDemo:
    platform: str  # the platform's name (handlers.REGISTRY)
    title: str
    command: str  # the `rapport clinic add` an admin would type for it

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.rapport_url = ""

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this stand-in cannot run here (None: it can)."""
        return None

    def start(self) -> str:
        """Start the stand-in; its URL."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Rapport's configuration pointing it at the stand-in (names without RAPPORT_)."""
        raise NotImplementedError

    def connect_fields(self) -> dict[str, Any]:
        """What the admin gives ``rapport clinic add`` (connect fields by name)."""
        raise NotImplementedError

    def connected(self, shown: dict[str, Any]) -> list[str]:
        """What the admin does in the platform once the clinic is added (pastes a URL)."""
        return []

    def book(self) -> list[str]:
        """Sam (with the therapist's notes) and Sam's visit, which ended half an hour ago,
        and what the platform delivered about it."""
        raise NotImplementedError

    def complete(self, clinic_id: int) -> list[str]:
        """The visit is over, as the platform says it (or does not)."""
        raise NotImplementedError

    def book_next(self) -> list[str]:
        """Sam books again, a week ahead."""
        raise NotImplementedError

    def client_notes(self) -> str:
        raise NotImplementedError

    def next_booking_notes(self) -> str | None:
        raise NotImplementedError

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of each request Rapport made to the stand-in, in order."""
        raise NotImplementedError

    def calls(self) -> list[str]:
        """Rapport's requests to the platform, counted by kind, first seen first."""
        counted = Counter(self.requests())
        return [f"{count} × {method} {path}" for (method, path), count in counted.items()]
