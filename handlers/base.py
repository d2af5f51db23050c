"""The adapter contract every booking-platform module in ``handlers/`` follows.

A platform module provides plain functions (see DESIGN.md, "The adapter contract"):

- ``verify(request, credentials)`` checks the signature on the raw bytes, in constant
  time, failing closed when no secret is configured; several secrets may be valid at
  once (rotation). Raises :class:`SignatureError`.
- ``sign(...)`` is the inverse of ``verify``, for tests, the demo and benchmarks.
- ``delivery_id(request)`` names the delivery for deduplication (the platform's event
  id, or a digest where the platform sends none).
- ``parse(request)`` turns a verified body into :class:`AppointmentEvent` objects.
  Raises :class:`PayloadError` naming the field for a malformed body and
  :class:`IgnoredEvent` for an event type Rapport does not act on.
- ``fetch_appointment(credentials, appointment_id)`` / ``fetch_client(credentials,
  client_id)`` read the platform's source of truth, with explicit timeouts.
- ``write_back(credentials, target, note, *, delivery_id, occurred_at)`` writes
  Rapport's note idempotently: it replaces Rapport's own block and never touches text
  Rapport did not write. ``delivery_id`` is the same on every attempt of one write.
- ``write_seller_note(credentials, booking_id, note)`` (optional): the note on a booking
  of its own, for platforms that have one.
- ``subscribe(credentials, url)`` registers the webhook where the platform allows it.
- ``COMPLETION`` is ``"status"`` when the platform says "completed" itself, or
  ``"end_time"`` when completion is derived from the end time (then the pipeline
  re-reads the appointment with ``fetch_appointment`` before acting).
- ``NOTE_LIMIT`` is the longest note, in characters, the write-back target accepts.

``credentials`` always carry ``timeout`` (seconds for each outbound call). Outbound
calls raise :class:`TransientError` (retry later, honouring ``retry_after``),
:class:`AuthError` (the clinic must reconnect; stop retrying), :class:`ConflictError`
(someone else changed the record; re-read and retry) or :class:`PermanentError` (of which
:class:`MissingPermission`: a scope the clinic did not grant).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
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


class AdapterError(Exception):
    """Base of every error a platform module raises."""


class SignatureError(AdapterError):
    """The request is not signed by the platform with a secret we hold."""


class PayloadError(AdapterError):
    """The body is malformed; ``field`` names the part that is wrong."""

    def __init__(self, field_path: str, message: str):
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.message = message


class IgnoredEvent(AdapterError):
    """A well-formed event Rapport does not act on; acknowledged and logged."""

    def __init__(self, event_type: str, reason: str | None = None):
        super().__init__(reason or f"event type {event_type!r} is not one Rapport acts on")
        self.event_type = event_type
        self.reason = reason


class TransientError(AdapterError):
    """The platform is unavailable or throttling; try again later."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(AdapterError):
    """The platform refused our credentials: the clinic must reconnect."""


class ConflictError(AdapterError):
    """The record changed under us (optimistic concurrency): re-read and retry."""


class PermanentError(AdapterError):
    """The platform rejected the request in a way retrying will not fix."""


class MissingPermission(PermanentError):
    """The account did not grant a permission (OAuth scope) this call needs: the clinic
    must connect again, granting it. Not an :class:`AuthError`, since the credentials
    still work for everything else."""


RECONNECT_ERRORS = (AuthError, MissingPermission)
"""What only the clinic connecting again fixes: its credentials refused, or a permission
it did not grant. The clinic is marked "needs reconnecting" and its work waits."""


def parse_instant(value: object) -> datetime | None:
    """An RFC 3339 time as platforms send it (``…Z`` or with an offset), in UTC when it
    gives no zone; None when it is not one."""
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _marker_line(text: str, marker: str, start: int = 0) -> re.Match | None:
    """``marker`` standing on a line of its own in ``text``, at or after ``start``; the
    line may end in CRLF (a note saved from a Windows or web form), whose CR stays with
    the line ending rather than the block."""
    return re.compile(rf"^{re.escape(marker)}[ \t]*(?=\r?$)", re.MULTILINE).search(text, start)


def replace_block(existing: str | None, note: Note) -> str:
    """Put ``note.text`` in place of Rapport's block in ``existing``.

    The block is what lies between the marker lines (``[Rapport]`` … ``[/Rapport]``,
    each on a line of its own): a therapist writing "[Rapport]" inside a sentence does
    not start one. Text outside the block is kept byte for byte. Without a block, the
    note is added after the existing text, after a blank line.
    """
    existing = existing or ""
    start = _marker_line(existing, note.block_start)
    if start is not None:
        end = _marker_line(existing, note.block_end, start.end())
        if end is not None:
            return existing[:start.start()] + note.text + existing[end.end():]
    if not existing.strip():
        return note.text
    gap = "" if existing.endswith("\n\n") else "\n" if existing.endswith("\n") else "\n\n"
    return existing + gap + note.text


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header given in seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
