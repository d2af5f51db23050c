"""Acuity's appointments and clients read as Rapport's appointments and clients: the status
map, the end time, the client id, :func:`fetch_appointment` and :func:`fetch_client`.

Acuity facts this module relies on, and where they are documented:

- ``GET /appointments/:id`` answers the appointment: ``id``, ``firstName``, ``lastName``,
  ``phone``, ``email``, ``datetime`` (ISO 8601 with the offset, e.g.
  ``2013-06-17T10:15:00-0700``), ``endTime`` (a clock time only, ``11:15am``), ``duration``
  (minutes, as text), ``type`` (the service), ``calendar`` / ``calendarID`` (whose diary),
  ``canceled``, ``notes``, ``labels``. There is no client id.
  https://developers.acuityscheduling.com/reference/get-appointments-id, and the
  specification's ``Appointment`` (shared/platforms/acuity/swagger.json).
- No-show: "Once canceled, appointments will have a noShow attribute. This attribute may be
  updated, but it isn't possible to un-cancel the appointment"; admins mark a no-show while
  cancelling ("Check Mark as no-show").
  https://developers.acuityscheduling.com/reference/put-appointments-id-cancel,
  https://help.acuityscheduling.com/hc/en-us/articles/36176963261325-Marking-appointments-as-no-shows
- Acuity has no "completed" status and no "late cancel": a visit is over when its time has
  passed and it was neither cancelled nor marked a no-show. Labels such as "Completed" or
  "Checked In" are the clinic's own free labels (the reference's examples) and are ignored.

How every Acuity state maps (see :func:`status_of`):

==========================================  ==========================================
Acuity                                      Rapport
==========================================  ==========================================
scheduled or rescheduled, not yet ended     ``booked``
scheduled or rescheduled, ended (re-read)   ``completed``
``canceled`` true, ``noShow`` false         ``cancelled`` (whenever it was cancelled,
                                            even after the start: no late-cancel state)
``canceled`` true, ``noShow`` true          ``no_show``
``noShow`` true without ``canceled``        ``no_show`` (not documented; defensive)
==========================================  ==========================================

The client id. Appointments carry the client's name, phone and e-mail but no client id (not
in the specification's ``Appointment`` nor in the reference's examples; integrators key
Acuity clients by e-mail: https://docs.perkville.com/overview/integrations/integration-reference/acuity-scheduling).
Rapport's client id is therefore a digest of the e-mail address, trimmed and lower-cased
(:func:`client_id_for`): stable across a client's appointments, and no address is kept in
Rapport's tables under it. It is pseudonymous, not anonymous: whoever knows an address can
compute it. An appointment without an e-mail address has no client Rapport can write to.

Not confirmed, and handled defensively:

- ``noShow`` is in the specification's ``Appointment`` but absent from the reference's
  example answer: a missing ``noShow`` reads as false.
- Acuity's example shows ``null`` for ``classID`` and ``certificate``; any field Rapport
  does not need may be null or missing.
- ``GET /clients`` (the community specification; answers an array of ``Client``, with
  ``email``, ``firstName``…, and no id): used only by :func:`fetch_client`, the fallback when
  an event brought no address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from handlers.acuity.api import appointment_path, call
from handlers.base import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    AppointmentEvent,
    Client,
    PermanentError,
    Person,
)

NAME = "acuity"


class _Text(fields.String):
    """Text that Acuity may also send as a number (ids, durations) or null."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(int(value)) if float(value).is_integer() else str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class _Appointment(Schema):
    class Meta:
        unknown = EXCLUDE

    id = _Text(required=True, validate=validate.Regexp(r"\A[1-9][0-9]{0,19}\Z"))
    datetime = fields.String(required=True)
    duration = _Text(required=True, validate=validate.Regexp(r"\A[0-9]{1,5}\Z"))
    canceled = fields.Boolean(load_default=False, allow_none=True)
    noShow = fields.Boolean(load_default=False, allow_none=True)
    firstName = fields.String(load_default=None, allow_none=True)
    lastName = fields.String(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    type = fields.String(load_default=None, allow_none=True)
    calendar = fields.String(load_default=None, allow_none=True)
    calendarID = _Text(load_default=None, allow_none=True)
    notes = fields.String(load_default=None, allow_none=True)


def load(payload: Any, appointment_id: str = "") -> dict[str, Any]:
    """Acuity's appointment, validated, with ``start`` and ``end`` (aware, UTC) added;
    :class:`PermanentError` when it is not one Rapport can use."""
    where = f"Acuity's appointment {appointment_id}".rstrip()
    if not isinstance(payload, Mapping):
        raise PermanentError(f"{where} is not an object")
    try:
        appointment = _Appointment().load(payload)
    except ValidationError as error:
        name, messages = next(iter(error.messages.items()))
        first = messages[0] if isinstance(messages, list) and messages else messages
        raise PermanentError(f"{where} is not usable: {name}: {first}") from None
    start = _start(appointment["datetime"])
    if start is None:
        raise PermanentError(f"{where} is not usable: datetime {appointment['datetime']!r} "
                             "is not a time with its offset")
    appointment["start"] = start
    appointment["end"] = start + timedelta(minutes=int(appointment["duration"]))
    return appointment


def status_of(appointment: Mapping[str, Any], now: datetime | None = None) -> str:
    """Rapport's status for a loaded appointment; ``completed`` only with ``now`` given, for
    one still standing once it has ended (the table in the module's docstring)."""
    if appointment.get("noShow"):
        return NO_SHOW
    if appointment.get("canceled"):
        return CANCELLED
    if now is not None and appointment["end"] <= now:
        return COMPLETED
    return BOOKED


def client_id_for(email: str | None) -> str | None:
    """Rapport's id for the Acuity client with this e-mail address (None without one)."""
    normalized = (email or "").strip().lower()
    if not normalized:
        return None
    digest = hashlib.sha256(("acuity-client\x1f" + normalized).encode("utf-8")).hexdigest()
    return "acuity-" + digest[:32]


def event_of(appointment: Mapping[str, Any], *, now: datetime) -> AppointmentEvent:
    """A loaded appointment as Rapport's event, as it stands at ``now``."""
    client_id = client_id_for(appointment["email"])
    if client_id is None:
        raise PermanentError(f"Acuity's appointment {appointment['id']} has no e-mail address, "
                             "so there is no client to check in with")
    status = status_of(appointment, now)
    calendar_id = appointment["calendarID"]
    return AppointmentEvent(
        platform=NAME,
        event_id=f"acuity-read:{appointment['id']}:{status}",
        occurred_at=now,
        appointment_id=appointment["id"],
        status=status,
        client=Client(id=client_id, email=appointment["email"].strip(),
                      first_name=(appointment["firstName"] or "").strip() or None),
        start=appointment["start"],
        end=appointment["end"],
        service=appointment["type"] or None,
        therapist=Person(id=calendar_id, name=appointment["calendar"] or None)
        if calendar_id else None,
    )


# --- reading from Acuity ---------------------------------------------------------------


def get_appointment(credentials: Mapping[str, Any], appointment_id: str) -> dict[str, Any]:
    """``GET /appointments/:id``, loaded (one call)."""
    return load(call(credentials, "GET", appointment_path(appointment_id)), appointment_id)


def fetch_appointment(credentials: Mapping[str, Any], appointment_id: str, *,
                      now: datetime | None = None) -> AppointmentEvent:
    """The appointment as Acuity has it now; ``completed`` once it has ended standing."""
    now = now or datetime.now(UTC)
    return event_of(get_appointment(credentials, appointment_id), now=now)


def fetch_client(credentials: Mapping[str, Any], client_id: str) -> Client:
    """The client whose e-mail address :func:`client_id_for` turns into ``client_id``, from
    Acuity's client list (one call). Only needed when an event brought no address."""
    found = call(credentials, "GET", "/clients")
    for client in found if isinstance(found, list) else [found]:
        if not isinstance(client, Mapping):
            continue
        email = client.get("email")
        if isinstance(email, str) and client_id_for(email) == client_id:
            first = client.get("firstName")
            return Client(id=client_id, email=email.strip(),
                          first_name=first.strip() if isinstance(first, str) and first.strip()
                          else None)
    raise PermanentError(f"no client in Acuity's client list has the address behind {client_id}")


def _start(value: str) -> datetime | None:
    # Acuity always sends the offset; a time without one would be off by the business's
    # offset, so it is refused rather than read as UTC.
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo is not None else None
