"""Mindbody's appointments and clients, read through the Public API v6 as Rapport's
appointments and clients.

Rapport rarely needs these: an appointment event carries the client's name and email,
the staff member and the times (:mod:`handlers.mindbody.webhooks`), and every call
beyond the allowance is billed. They serve a re-check of one appointment, a client whose
event came without an email, and the read before each write (:mod:`.notes`).

Mindbody facts this module relies on, and where they are documented:

- ``GET /public/v6/appointment/staffappointments`` answers ``{"Appointments": [...]}``;
  an appointment has ``Id``, ``Status`` (None, Requested, Booked, Completed, Confirmed,
  Arrived, NoShow, Cancelled, LateCancelled), ``StartDateTime``, ``EndDateTime``,
  ``Notes``, ``StaffId``, ``ClientId``, ``LocationId``, ``SessionTypeId``; it is filtered
  with ``request.appointmentIds``, ``request.startDate`` and ``request.endDate``.
- ``GET /public/v6/client/clients`` answers ``{"Clients": [...]}``, filtered with
  ``request.clientIds``; a client has ``Id``, ``FirstName``, ``Email``, ``Notes`` ("any
  notes entered on the client's account by staff members … never shown to clients") and
  ``SendAccountEmails``.
  https://developers.mindbodyonline.com/PublicDocumentation/V6 and the schemas generated
  from Mindbody's SDKs:
  https://github.com/api-evangelist/mindbody/blob/main/json-schema/public-api-v6-appointment-schema.json,
  https://github.com/api-evangelist/mindbody/blob/main/json-schema/public-api-v6-client-schema.json

Not confirmed, and handled defensively:

- That ``staffappointments`` finds an appointment by id outside its default date range
  (today): Rapport always sends a range, from 60 days back to 400 days ahead.
- The time zone of the Public API's times (the site's, without an offset): a time without
  an offset is read as UTC (:func:`handlers.base.parse_instant`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.base import AppointmentEvent, Client, PermanentError, Person, parse_instant
from handlers.mindbody.api import NotFound, public_call
from handlers.mindbody.webhooks import NAME, STATUSES

LOOK_BACK = timedelta(days=60)
LOOK_AHEAD = timedelta(days=400)


def appointment(credentials: Mapping[str, Any], appointment_id: str, *,
                now: datetime | None = None) -> dict[str, Any]:
    """The appointment as Mindbody has it now (one call)."""
    now = now or datetime.now(UTC)
    params = {
        "request.appointmentIds": str(appointment_id),
        "request.startDate": (now - LOOK_BACK).strftime("%Y-%m-%dT00:00:00"),
        "request.endDate": (now + LOOK_AHEAD).strftime("%Y-%m-%dT23:59:59"),
    }
    answer = public_call(credentials, "GET", "appointment/staffappointments", params=params)
    for found in answer.get("Appointments") or ():
        if isinstance(found, dict) and str(found.get("Id")) == str(appointment_id):
            return found
    raise NotFound(f"Mindbody has no appointment {appointment_id} within "
                   f"{LOOK_BACK.days} days back and {LOOK_AHEAD.days} days ahead")


def client_record(credentials: Mapping[str, Any], client_id: str) -> dict[str, Any]:
    """The client's record (one call)."""
    answer = public_call(credentials, "GET", "client/clients",
                         params={"request.clientIds": str(client_id)})
    for found in answer.get("Clients") or ():
        if isinstance(found, dict) and str(found.get("Id")) == str(client_id):
            return found
    raise NotFound(f"Mindbody has no client {client_id}")


def fetch_appointment(credentials: Mapping[str, Any], appointment_id: str, *,
                      now: datetime | None = None) -> AppointmentEvent:
    """The appointment as Mindbody has it now; ``completed`` only once Mindbody says
    Completed (Rapport never infers it from the time)."""
    now = now or datetime.now(UTC)
    found = appointment(credentials, appointment_id, now=now)
    status = STATUSES.get(str(found.get("Status")))
    if status is None:
        raise PermanentError(f"Mindbody's appointment {appointment_id} has status "
                             f"{found.get('Status')!r}, not one Rapport knows")
    client_id = found.get("ClientId")
    if client_id in (None, ""):
        raise PermanentError(f"Mindbody's appointment {appointment_id} has no client")
    staff = found.get("Staff") if isinstance(found.get("Staff"), dict) else {}
    staff_id = found.get("StaffId") or staff.get("Id")
    staff_name = " ".join(str(part) for part in (staff.get("FirstName"), staff.get("LastName"))
                          if part)
    start, end = parse_instant(found.get("StartDateTime")), parse_instant(found.get("EndDateTime"))
    return AppointmentEvent(
        platform=NAME,
        event_id=f"mindbody-fetch:{appointment_id}:{found.get('Status')}",
        occurred_at=now,
        appointment_id=str(found.get("Id") or appointment_id),
        status=status,
        client=Client(id=str(client_id)),
        start=start.astimezone(UTC) if start else None,
        end=end.astimezone(UTC) if end else None,
        therapist=Person(id=str(staff_id), name=staff_name or None) if staff_id else None,
        location_id=str(found["LocationId"]) if found.get("LocationId") is not None else None,
    )


def fetch_client(credentials: Mapping[str, Any], client_id: str) -> Client:
    found = client_record(credentials, client_id)
    return Client(
        id=str(found.get("Id") or client_id),
        email=found.get("Email") or None,
        first_name=found.get("FirstName") or None,
        locale=None,  # Mindbody keeps no language per client
    )
