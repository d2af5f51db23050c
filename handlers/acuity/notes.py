"""Writing back to Acuity: Rapport's block in the client's notes (when Acuity lets Rapport
name that client unambiguously), else in the visit's own notes; and the talking points in
the client's next appointment's notes.

Acuity facts this module relies on, and where they are documented:

- ``PUT /appointments/:id?admin=true`` with ``notes``: "Updating an appointment as an admin
  allows setting the "notes" … field"; attributes not on the white-list are ignored.
  https://developers.acuityscheduling.com/reference/put-appointments-id
- Appointment notes are the admin's private notes on the visit ("add private notes about
  the appointment"), not shown to the client.
  https://help.acuityscheduling.com/hc/en-us/articles/16676870828685-Booking-appointments-for-clients-with-Acuity-Scheduling
- A client profile lists all of the client's appointments.
  https://help.acuityscheduling.com/hc/en-us/articles/16676896712589-Managing-your-client-list-in-Acuity-Scheduling

Not confirmed, and handled defensively — the client's notes:

- ``GET /clients?search=`` ("filter by first name, last name, phone number") and
  ``PUT /clients`` with the client's ``notes`` are described by the community specification
  (shared/platforms/acuity/swagger.json, ``Client.notes``) and used by public integrations,
  but no Acuity reference page for them was found. ``PUT /clients`` names the client by
  ``firstName`` + ``lastName`` (+ ``phone``) in the query — not by an id — and names are
  not unique. (The specification spells the second parameter ``lasttName``; its own example
  body says ``lastName``, which is what is sent.)
- So the client's notes are written only when exactly one client in the search answer has
  the visit's first and last name (and, among namesakes, one phone number), and that client
  has the visit's e-mail address; the PUT's answer must then carry Rapport's block.
  Otherwise Rapport's block goes to the visit's own notes, which Acuity addresses by id.
- No version or lock protects either note: Rapport reads and writes within a second, and a
  therapist's edit saved in that second is lost (Acuity offers nothing better).
- No length limit is documented for either ``notes``: Rapport keeps each under
  :data:`NOTES_LIMIT` characters, shortening its own block (never the therapist's text) to
  fit, and checks that Acuity kept the block whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from handlers.acuity.api import appointment_path, call
from handlers.acuity.appointments import client_id_for, get_appointment
from handlers.base import Note, PermanentError, WriteBackResult, WriteBackTarget, replace_block

NOTES_LIMIT = 4000
"""Rapport's own ceiling for a whole ``notes`` field (Acuity documents none)."""


def write_back(
    credentials: Mapping[str, Any],
    target: WriteBackTarget,
    note: Note,
    *,
    delivery_id: str | None = None,
    occurred_at: datetime | None = None,
) -> WriteBackResult:
    """Replace Rapport's block in the client's notes, or in the visit's notes when the client
    cannot be named unambiguously. Idempotent by content: a second run changes nothing.

    ``delivery_id`` and ``occurred_at`` are part of the contract; Acuity needs neither.
    """
    appointment = get_appointment(credentials, target.appointment_id)
    if client_id_for(appointment["email"]) != target.client_id:
        raise PermanentError(
            f"Acuity's appointment {target.appointment_id} no longer has the e-mail address of "
            f"client {target.client_id}; nothing written")
    client, why = _the_client(credentials, appointment)
    if client is not None:
        written = _write_client_notes(credentials, client, note)
        if written is not None:
            return WriteBackResult(target="acuity.client", detail=written)
        why = "the client's notes leave no room for Rapport's block, or Acuity did not keep it"
    detail = _write_appointment_notes(credentials, appointment, note)
    if detail is None:
        raise PermanentError(f"no room for Rapport's note in appointment {appointment['id']}")
    return WriteBackResult(target="acuity.appointment", detail={**detail, "why": why})


def write_booking_note(credentials: Mapping[str, Any], booking_id: str, note: Note, *,
                       now: datetime | None = None) -> bool:
    """Put Rapport's block in an upcoming appointment's notes.

    True when the appointment carries the block afterwards (written now or already there);
    False when it is cancelled, over, or the therapist's own notes leave too little room.
    """
    appointment = get_appointment(credentials, booking_id)
    if appointment["canceled"] or appointment["noShow"]:
        return False
    if appointment["end"] <= (now or datetime.now(UTC)):
        return False
    return _write_appointment_notes(credentials, appointment, note) is not None


# --- the client's notes ----------------------------------------------------------------


def _the_client(credentials: Mapping[str, Any],
                appointment: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The one client ``PUT /clients`` would reach for this visit, or None and why not."""
    first, last = (appointment["firstName"] or "").strip(), (appointment["lastName"] or "").strip()
    if not first or not last:
        return None, "the visit has no first and last name to name the client by"
    found = call(credentials, "GET", "/clients", params={"search": f"{first} {last}"})
    listed = [c for c in (found if isinstance(found, list) else [found])
              if isinstance(c, Mapping)]
    namesakes = [c for c in listed
                 if _same(c.get("firstName"), first) and _same(c.get("lastName"), last)]
    if len(namesakes) > 1:
        phone = _digits(appointment["phone"])
        namesakes = [c for c in namesakes if phone and _digits(c.get("phone")) == phone]
        phones = {str(c.get("phone") or "") for c in namesakes}
        if len(namesakes) != 1 or len(phones) != 1:
            return None, "several clients share the name and Acuity names clients by name"
    if not namesakes:
        return None, "no client in Acuity's client list has the visit's name"
    client = dict(namesakes[0])
    if not _same(client.get("email"), appointment["email"]):
        return None, "the client with the visit's name has another e-mail address"
    return client, ""


def _write_client_notes(credentials: Mapping[str, Any], client: Mapping[str, Any],
                        note: Note) -> dict[str, Any] | None:
    existing = client.get("notes") or ""
    updated = _fit(existing, note)
    if updated is None:
        return None
    if updated == existing:
        return {"notes_updated": False}
    params = {"firstName": client["firstName"], "lastName": client["lastName"]}
    if client.get("phone"):
        params["phone"] = client["phone"]
    saved = call(credentials, "PUT", "/clients", params=params, body={"notes": updated})
    if not (isinstance(saved, Mapping) and _carries(saved.get("notes"), note)):
        return None
    return {"notes_updated": True}


# --- an appointment's notes ------------------------------------------------------------


def _write_appointment_notes(credentials: Mapping[str, Any], appointment: Mapping[str, Any],
                             note: Note) -> dict[str, Any] | None:
    existing = appointment["notes"] or ""
    updated = _fit(existing, note)
    if updated is None:
        return None
    detail = {"appointment_id": appointment["id"], "notes_updated": updated != existing}
    if updated == existing:
        return detail
    saved = call(credentials, "PUT", appointment_path(appointment["id"]),
                 params={"admin": "true"}, body={"notes": updated})
    if not (isinstance(saved, Mapping) and _carries(saved.get("notes"), note)):
        return None
    return detail


def _fit(existing: str, note: Note) -> str | None:
    """``existing`` with Rapport's block in the room the therapist's text leaves.

    A block too long for that room is rendered again, shorter, by the note's own renderer;
    when even its smallest form does not fit, None. The therapist's text is never cut.
    """
    updated = replace_block(existing, note)
    if len(updated) <= NOTES_LIMIT:
        return updated
    # replace_block keeps everything around the block as it is, whatever the block.
    room = NOTES_LIMIT - (len(updated) - len(note.text))
    fitted = note.fitted(room)
    return None if fitted is None else replace_block(existing, fitted)


def _carries(saved: Any, note: Note) -> bool:
    """Whether Acuity kept Rapport's block whole (line endings aside)."""
    if not isinstance(saved, str):
        return False
    saved = saved.replace("\r\n", "\n")
    return note.block_start in saved and note.block_end in saved.split(note.block_start, 1)[1]


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip().casefold() == \
        b.strip().casefold() and bool(a.strip())


def _digits(value: Any) -> str:
    return re.sub(r"\D", "", value) if isinstance(value, str) else ""
