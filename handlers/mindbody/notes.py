"""Writing back to Mindbody: Rapport's block in the client's account notes, and in the
notes of the client's next appointment.

Each write reads the record, replaces Rapport's block (:func:`handlers.base.replace_block`,
the therapist's text kept byte for byte) and sends the whole notes back only when they
changed, so a second identical write is one read and nothing else.

Mindbody facts this module relies on, and where they are documented:

- ``POST /public/v6/client/updateclient`` takes ``{"Client": {"Id", …}, "Test",
  "CrossRegionalUpdate"}``: the ``Id`` finds the client and "any specified values are
  updated"; ``CrossRegionalUpdate`` defaults to true (every site of the region), so
  Rapport sends false and writes only the clinic's own site.
  https://github.com/api-evangelist/mindbody/blob/main/json-schema/public-api-v6-update-client-request-schema.json
- ``POST /public/v6/appointment/updateappointment`` takes ``AppointmentId``, ``Notes``
  ("any general notes about this appointment"), ``SendEmail`` (default false) and
  ``Test``.
  https://github.com/api-evangelist/mindbody/blob/main/json-schema/public-api-v6-update-appointment-request-schema.json
  (both generated from Mindbody's SDKs; https://developers.mindbodyonline.com/PublicDocumentation/V6)

Not confirmed, and handled defensively:

- The longest ``Notes`` Mindbody keeps on a client or an appointment: Rapport's block
  stays under 2000 characters (``note_limit``), and an appointment's notes, the
  therapist's and Rapport's together, under :data:`APPOINTMENT_NOTES_LIMIT`; a block
  that does not fit is rendered shorter by the note itself, never by cutting the
  therapist's text.
- Mindbody has no version on clients or appointments, so a therapist saving the same
  notes between Rapport's read and its write (a fraction of a second) could lose that
  save; Rapport narrows the window by sending nothing when nothing changed.
- Formula notes (``addclientformulanote``) are not used: each call adds one more note to
  the client's history, so a retried job would repeat Rapport's block.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from handlers.base import Note, PermanentError, WriteBackResult, WriteBackTarget, replace_block
from handlers.mindbody.api import NotFound, public_call
from handlers.mindbody.appointments import appointment, client_record

APPOINTMENT_NOTES_LIMIT = 2000
# Appointments that can still carry talking points for the visit ahead.
ACTIVE_STATUSES = frozenset({"Requested", "Booked", "Scheduled", "Confirmed", "Arrived"})


def write_back(credentials: Mapping[str, Any], target: WriteBackTarget, note: Note, *,
               delivery_id: str | None = None,
               occurred_at: datetime | None = None) -> WriteBackResult:
    """Replace Rapport's block in the client's account notes (two calls; one when the
    block is already there). ``delivery_id`` and ``occurred_at`` are part of the contract;
    the write is idempotent by content, so Mindbody needs neither."""
    client = client_record(credentials, target.client_id)
    existing = client.get("Notes") or ""
    if not isinstance(existing, str):
        raise PermanentError(f"Mindbody's client {target.client_id} has notes that are not text")
    updated = replace_block(existing, note)
    changed = updated != existing
    if changed:
        body = {"Client": {"Id": str(client.get("Id") or target.client_id), "Notes": updated},
                "CrossRegionalUpdate": False, "Test": False}
        public_call(credentials, "POST", "client/updateclient", body=body)
    return WriteBackResult(target="mindbody.client_notes",
                           detail={"client_id": target.client_id, "site_id":
                                   str(credentials.get("site_id")), "notes_updated": changed})


def write_booking_note(credentials: Mapping[str, Any], booking_id: str, note: Note) -> bool:
    """Put Rapport's block in the appointment's notes.

    True when the appointment carries the block afterwards (written now or already
    there); False when it is no longer ahead (cancelled, completed, gone) or the
    therapist's own notes leave too little room (their text is never shortened).
    """
    try:
        found = appointment(credentials, booking_id)
    except NotFound:
        return False
    if str(found.get("Status")) not in ACTIVE_STATUSES:
        return False
    existing = found.get("Notes") or ""
    if not isinstance(existing, str):
        return False
    updated = _fit(existing, note)
    if updated is None:
        return False
    if updated == existing:
        return True
    try:
        appointment_id: int | str = int(found.get("Id") or booking_id)
    except (TypeError, ValueError):
        appointment_id = str(booking_id)
    body = {"AppointmentId": appointment_id, "Notes": updated, "SendEmail": False,
            "Test": False}
    public_call(credentials, "POST", "appointment/updateappointment", body=body)
    return True


def _fit(existing: str, note: Note) -> str | None:
    """``existing`` with Rapport's block in the room the therapist's text leaves."""
    updated = replace_block(existing, note)
    if len(updated) <= APPOINTMENT_NOTES_LIMIT:
        return updated
    # replace_block keeps everything around the block as it is, whatever the block.
    room = APPOINTMENT_NOTES_LIMIT - (len(updated) - len(note.text))
    fitted = note.fitted(room)
    return None if fitted is None else replace_block(existing, fitted)
