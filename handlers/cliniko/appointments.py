"""Cliniko's individual appointments read as Rapport's appointments: the schema, the
status map, and :func:`fetch_appointment`.

How Cliniko's fields map onto Rapport's statuses, first match wins:

===========================================  ===========
Cliniko                                      Rapport
===========================================  ===========
``archived_at`` or ``deleted_at`` set        CANCELLED   (taken out of the diary)
``cancelled_at`` set                         CANCELLED
``did_not_arrive`` true                      NO_SHOW
``ends_at`` passed (plus the grace)          COMPLETED
otherwise                                    BOOKED
===========================================  ===========

``patient_arrived`` is not required for COMPLETED: many clinics never mark arrivals, and
an appointment that was neither cancelled nor marked "did not arrive" once its time is
over is a visit that took place. Group appointments (classes, their attendees) are not
followed: Rapport asks about one therapist and one client.

Cliniko facts this module relies on, and where they are documented:

- ``GET /individual_appointments`` and ``GET /individual_appointments/{id}``; fields
  ``id``, ``updated_at``, ``starts_at``, ``ends_at`` (always set), ``cancelled_at``,
  ``archived_at``, ``deleted_at``, ``did_not_arrive``, ``patient_arrived``, ``notes``,
  ``patient_name``, and ``patient``, ``practitioner``, ``appointment_type``, ``business``
  as ``{"links": {"self": ".../patients/82"}}``; filters on ``id`` (integer) and on
  ``updated_at``, ``starts_at``, ``ends_at``, ``cancelled_at``, ``archived_at`` (date-time).
  https://docs.api.cliniko.com/openapi/reference/tag/Individual-Appointment and
  https://github.com/redguava/cliniko-api/blob/master/sections/individual_appointments.md
  (the latter's examples are this package's ``documented`` fixtures).
- Lists leave out cancelled and archived records unless a filter on ``cancelled_at`` or
  ``archived_at`` asks for them (``q[]=archived_at:*``, "any value").
  https://docs.api.cliniko.com/ ("DateTime Filter Operators").
- Times are UTC, ``2014-08-30T18:00:00Z``. https://docs.api.cliniko.com/ ("Dates and Times")

Not confirmed, and handled defensively:

- Ids: integers in the older examples, strings holding an int64 in the current reference;
  both are read, as text of digits.
- Whether ``GET /individual_appointments/{id}`` still answers for a cancelled or archived
  appointment: on a 404 Rapport asks the list for that id with ``cancelled_at:*`` and
  ``archived_at:*`` before calling it gone.
- ``deleted_at`` belongs to the older API (deletion is now archiving, ``DELETE`` is
  deprecated); either set means the appointment is no longer in the diary.
- Empty strings where a time is null (seen in the older patient examples) are read as null.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from handlers.base import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    AppointmentEvent,
    Client,
    PayloadError,
    PermanentError,
    Person,
)
from handlers.base import Instant as BoundedInstant
from handlers.cliniko.api import NotFound, call, segment

NAME = "cliniko"
RECORD = "individual_appointment"
DIGITS = re.compile(r"^[0-9]{1,19}$")


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class Identifier(fields.Field):
    """A Cliniko id: an integer, or a string of digits (int64 as text)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return str(value)
        if isinstance(value, str) and DIGITS.match(value):
            return value
        raise ValidationError("Not a Cliniko id (digits).")


class Instant(BoundedInstant):
    """A UTC time within the years a booking can have; an empty string is read as null."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value == "":
            value = None
        return super().deserialize(value, attr, data, **kwargs)



class _SelfLink(_Lenient):
    self_ = fields.String(data_key="self", required=True)


class _Link(_Lenient):
    links = fields.Nested(_SelfLink, required=True)


def _link(**kwargs) -> fields.Nested:
    return fields.Nested(_Link, load_default=None, allow_none=True, **kwargs)


class _Appointment(_Lenient):
    id = Identifier(required=True)
    updated_at = Instant(required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    cancelled_at = Instant(load_default=None, allow_none=True)
    archived_at = Instant(load_default=None, allow_none=True)
    deleted_at = Instant(load_default=None, allow_none=True)
    did_not_arrive = fields.Boolean(load_default=None, allow_none=True)
    patient_arrived = fields.Boolean(load_default=None, allow_none=True)
    notes = fields.String(load_default=None, allow_none=True)
    patient_name = fields.String(load_default=None, allow_none=True)
    patient = _link()
    practitioner = _link()
    appointment_type = _link()
    business = _link()


APPOINTMENT = _Appointment()
LINKED = ("patient", "practitioner", "appointment_type", "business")


def load(data: Any) -> dict[str, Any]:
    """An individual appointment as Cliniko sent it, checked: its linked records' ids in
    ``patient_id``, ``practitioner_id``, ``appointment_type_id``, ``business_id`` (None when
    not linked). Raises :class:`PayloadError` naming the field."""
    if not isinstance(data, Mapping):
        raise PayloadError("body", "expected a JSON object")
    try:
        record = APPOINTMENT.load(data)
    except ValidationError as error:
        raise PayloadError(*_first_error(error.messages)) from None
    for name in LINKED:
        record[f"{name}_id"] = _linked_id(record[name], name)
    if record["ends_at"] < record["starts_at"]:
        raise PayloadError("ends_at", "is before starts_at")
    return record


def status_of(record: Mapping[str, Any], now: datetime,
              grace: timedelta = timedelta(0)) -> str:
    """Rapport's status for the appointment as it stood at ``now`` (module docstring)."""
    if record["archived_at"] or record["deleted_at"] or record["cancelled_at"]:
        return CANCELLED
    if record["did_not_arrive"]:
        return NO_SHOW
    if record["ends_at"] + grace <= now:
        return COMPLETED
    return BOOKED


def completed_at(record: Mapping[str, Any], grace: timedelta = timedelta(0)) -> datetime:
    """When the visit became completed for Rapport: its end (plus the grace), or Cliniko's
    last change if that came later. Later than any ``booked`` word on the same record, so
    a late ``booked`` delivery never outranks it."""
    return max(record["updated_at"], record["ends_at"] + grace)


def event(record: Mapping[str, Any], *, status: str, event_id: str,
          occurred_at: datetime) -> AppointmentEvent:
    practitioner = record["practitioner_id"]
    return AppointmentEvent(
        platform=NAME,
        event_id=event_id,
        occurred_at=occurred_at,
        appointment_id=record["id"],
        status=status,
        client=Client(id=record["patient_id"]),
        start=record["starts_at"],
        end=record["ends_at"],
        # The record names its appointment type and practitioner by link only; their
        # names would cost a call each.
        service=None,
        therapist=Person(id=practitioner) if practitioner else None,
        location_id=record["business_id"],
    )


def stamp(when: datetime) -> str:
    """A time as Cliniko writes it (and as its filters take it): UTC, whole seconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- reading from Cliniko ----------------------------------------------------------


def fetch_appointment(credentials: Mapping[str, Any], appointment_id: str, *,
                      now: datetime | None = None) -> AppointmentEvent:
    """The appointment as Cliniko has it now: ``completed`` once it has ended still
    standing (Rapport calls this at the end plus the clinic's grace)."""
    now = now or datetime.now(UTC)
    if not DIGITS.match(str(appointment_id)):
        raise PermanentError(f"{appointment_id!r} is not a Cliniko appointment id")
    path = f"/individual_appointments/{segment(appointment_id)}"
    try:
        payload = call(credentials, "GET", path)
    except NotFound as error:
        payload = _hidden(credentials, str(appointment_id), error)
    try:
        record = load(payload)
    except PayloadError as error:
        raise PermanentError(f"Cliniko's appointment {appointment_id} is not usable: "
                             f"{error}") from None
    if not record["patient_id"]:
        raise PermanentError(f"Cliniko's appointment {appointment_id} has no patient")
    status = status_of(record, now)
    occurred = completed_at(record) if status == COMPLETED else record["updated_at"]
    return event(record, status=status, occurred_at=occurred,
                 event_id=f"cliniko-fetch:{record['id']}:{stamp(record['updated_at'])}:{status}")


def _hidden(credentials: Mapping[str, Any], appointment_id: str,
            error: NotFound) -> dict[str, Any]:
    """The appointment from the list, which shows cancelled and archived ones when asked."""
    params = [("q[]", f"id:={appointment_id}"), ("q[]", "cancelled_at:*"),
              ("q[]", "archived_at:*")]
    found = call(credentials, "GET", "/individual_appointments", params=params)
    items = found.get("individual_appointments")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and str(item.get("id")) == appointment_id:
            return dict(item)
    raise error


# --- small helpers -------------------------------------------------------------------


def _linked_id(link: Mapping[str, Any] | None, name: str) -> str | None:
    if link is None:
        return None
    url = link["links"]["self_"]
    last = url.rstrip("/").rsplit("/", 1)[-1]
    if not DIGITS.match(last):
        raise PayloadError(f"{name}.links.self", f"{url!r} is not a link to a Cliniko record")
    return last


def _first_error(messages: Any, path: str = "") -> tuple[str, str]:
    if isinstance(messages, Mapping) and messages:
        key, value = next(iter(messages.items()))
        key = "self" if key == "self_" else str(key)
        if key == "_schema":  # the value as a whole is wrong: the path names it already
            return _first_error(value, path)
        return _first_error(value, f"{path}.{key}" if path else key)
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], path)
    return path or "body", str(messages)
