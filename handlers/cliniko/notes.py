"""Writing back to Cliniko: Rapport's block in the patient's notes, and Rapport's block
in the notes of the client's next appointment.

What the clinic wrote stays byte for byte: Rapport reads the notes, replaces its own
block (``[Rapport]`` … ``[/Rapport]``, see :func:`handlers.base.replace_block`) and writes
the notes back only when they changed, so running the same write-back twice changes
nothing the second time.

Cliniko facts this module relies on, and where they are documented:

- ``PATCH /patients/{id}`` and ``PATCH /individual_appointments/{id}`` update the fields
  given (the current reference; its GitHub predecessor showed ``PUT``); patients have
  ``notes``, appointments ``notes``. https://docs.api.cliniko.com/openapi/reference/tag/Patient,
  https://docs.api.cliniko.com/openapi/reference/tag/Individual-Appointment,
  https://github.com/redguava/cliniko-api/blob/master/sections/patients.md ("Update Patient")

Not confirmed, and handled defensively:

- Neither ``notes`` has a documented length limit (the reference gives one for other
  fields, 255 characters, and none for these). Rapport's block on a profile is kept under
  the declared note limit (2000 characters) by the note's renderer; on an appointment,
  where it shows in the diary beside the therapist's own note, under
  :data:`BOOKING_BLOCK_LIMIT`, never shortening the therapist's text.
- Cliniko offers no version check on updates: between Rapport's read and its write (one
  round trip) a note saved by someone else could be overwritten. Rapport keeps that gap to
  the two requests and writes nothing when its block is already there.
- Whether appointment notes are shown to patients: Cliniko's reference describes them as
  the appointment's notes in the diary, not as a message to the patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from handlers.base import (
    BOOKED,
    Note,
    PayloadError,
    PermanentError,
    WriteBackResult,
    WriteBackTarget,
    replace_block,
)
from handlers.cliniko.api import NotFound, call, segment
from handlers.cliniko.appointments import load, status_of
from handlers.cliniko.patients import patient

TARGET = "cliniko.patient"
BOOKING_BLOCK_LIMIT = 1000


def write_back(credentials: Mapping[str, Any], target: WriteBackTarget, note: Note, *,
               delivery_id: str | None = None,
               occurred_at: datetime | None = None) -> WriteBackResult:
    """Replace Rapport's block in the patient's notes (two requests, one when nothing
    changed). ``delivery_id`` and ``occurred_at`` are part of the adapter contract; the
    write is idempotent by content, so Cliniko needs neither."""
    found = patient(credentials, target.client_id)
    existing = _notes(found.get("notes"), "notes")
    updated = replace_block(existing, note)
    detail = {"patient_id": str(found["id"]), "note_updated": updated != existing}
    if updated != existing:
        call(credentials, "PATCH", f"/patients/{segment(target.client_id)}",
             body={"notes": updated})
    return WriteBackResult(target=TARGET, detail=detail)


def write_booking_note(credentials: Mapping[str, Any], appointment_id: str, note: Note, *,
                       now: datetime | None = None) -> bool:
    """Put Rapport's block in the notes of an appointment still to come.

    True when the appointment carries the block afterwards (written now or already there);
    False when it no longer stands (cancelled, archived, marked "did not arrive", over) or
    the block cannot be made short enough. The therapist's text is never shortened.
    """
    now = now or datetime.now(UTC)
    path = f"/individual_appointments/{segment(appointment_id)}"
    try:
        record = load(call(credentials, "GET", path))
    except NotFound:
        return False
    except PayloadError as error:
        raise PermanentError(f"Cliniko's appointment {appointment_id} is not usable: "
                             f"{error}") from None
    if status_of(record, now) != BOOKED:
        return False
    fitted = note.fitted(BOOKING_BLOCK_LIMIT)
    if fitted is None:
        return False
    existing = _notes(record["notes"], "notes")
    updated = replace_block(existing, fitted)
    if updated != existing:
        call(credentials, "PATCH", path, body={"notes": updated})
    return True


def _notes(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PermanentError(f"Cliniko's {name} is not text")
    return value
