"""The shapes every platform's facts are normalized into, whatever the platform.

An adapter turns a platform's deliveries and API answers into these; the pipeline in
``plugin/`` only ever sees these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

BOOKED = "booked"
COMPLETED = "completed"
CANCELLED = "cancelled"
NO_SHOW = "no_show"
STATUSES = (BOOKED, COMPLETED, CANCELLED, NO_SHOW)


@dataclass(frozen=True)
class InboundRequest:
    """What a webhook request carried, independent of the web framework. Header names
    are kept in lower case, whatever case they came in."""

    body: bytes
    headers: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers",
                           {name.lower(): value for name, value in self.headers.items()})

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Person:
    id: str
    name: str | None = None


@dataclass(frozen=True)
class Client:
    id: str
    email: str | None = None
    first_name: str | None = None
    locale: str | None = None
    # The client asked the platform for no marketing or other email.
    unsubscribed: bool = False


@dataclass(frozen=True)
class AppointmentEvent:
    """One normalized fact about one appointment, whatever the platform."""

    platform: str
    event_id: str
    occurred_at: datetime
    appointment_id: str
    status: str
    client: Client
    start: datetime | None = None
    end: datetime | None = None
    service: str | None = None
    therapist: Person | None = None
    # The platform's own revision counter where it has one (Square's booking
    # version): an event older than what is stored is ignored.
    version: int | None = None
    location_id: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown appointment status {self.status!r}")


@dataclass(frozen=True)
class WriteBackTarget:
    client_id: str
    appointment_id: str
    therapist_id: str | None = None


@dataclass(frozen=True)
class Note:
    """Rapport's note for one client, and the markers that delimit its block.

    ``render(limit)`` renders the same note again in at most ``limit`` characters, the
    least important parts dropped first and no word cut, or raises ``ValueError`` when
    even its smallest form does not fit. A note known only by its text has no ``render``.
    """

    text: str
    block_start: str
    block_end: str
    summary: Mapping[str, Any] = field(default_factory=dict)
    talking_points: tuple[str, ...] = ()
    render: Callable[[int], str] | None = field(default=None, compare=False, repr=False)

    def fitted(self, limit: int) -> Note | None:
        """This note in at most ``limit`` characters, or None when it cannot fit. Text
        is never cut by hand here: only the note's renderer knows what may go."""
        if len(self.text) <= limit:
            return self
        if self.render is None or limit <= 0:
            return None
        try:
            text = self.render(limit)
        except ValueError:
            return None
        return replace(self, text=text) if len(text) <= limit else None


@dataclass(frozen=True)
class WriteBackResult:
    target: str
    detail: Mapping[str, Any] = field(default_factory=dict)


def event_to_dict(event: AppointmentEvent) -> dict[str, Any]:
    """``event`` as JSON-ready data (times in ISO 8601), for the inbox to keep."""
    # Not dataclasses.asdict: it deep-copies every value, datetimes included, which cost
    # a fifth of a webhook's time in the receiver; every value here is immutable.
    data = _fields_of(event)
    data["client"] = _fields_of(event.client)
    if event.therapist is not None:
        data["therapist"] = _fields_of(event.therapist)
    for name in ("occurred_at", "start", "end"):
        if data[name] is not None:
            data[name] = data[name].isoformat()
    return data


def _fields_of(instance: Any) -> dict[str, Any]:
    return {each.name: getattr(instance, each.name) for each in fields(instance)}


def event_from_dict(data: Mapping[str, Any]) -> AppointmentEvent:
    """The event :func:`event_to_dict` described."""
    values = dict(data)
    for name in ("occurred_at", "start", "end"):
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name])
    values["client"] = Client(**values["client"])
    if values.get("therapist") is not None:
        values["therapist"] = Person(**values["therapist"])
    return AppointmentEvent(**values)
