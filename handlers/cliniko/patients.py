"""Cliniko's patients read as Rapport's clients.

Cliniko facts this module relies on, and where they are documented:

- ``GET /patients/{id}``: ``id``, ``first_name``, ``last_name``, ``email`` (nullable),
  ``notes``, ``appointment_notes``, ``time_zone`` (an IANA zone or null),
  ``accepted_email_marketing`` (null, true or false), ``archived_at``, ``custom_fields``.
  https://docs.api.cliniko.com/openapi/reference/tag/Patient and
  https://github.com/redguava/cliniko-api/blob/master/sections/patients.md (whose "Get
  Patient" example is the ``patient__documented`` fixture).

Not confirmed, and handled defensively:

- A patient has no language: ``locale`` is None and the clinic's own language applies.
- ``accepted_email_marketing`` is consent to marketing, its default for patients added by
  the front desk is not documented, and a check-in is about the visit the client just had:
  Rapport does not read it as "no email" (a clinic that wants a client left out opts them
  out in Rapport).
- Older examples write a null email as ``""``: read as no email.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.base import Client, PermanentError
from handlers.cliniko.api import call, segment
from handlers.cliniko.appointments import DIGITS


def patient(credentials: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    if not DIGITS.match(str(patient_id)):
        raise PermanentError(f"{patient_id!r} is not a Cliniko patient id")
    found = call(credentials, "GET", f"/patients/{segment(patient_id)}")
    if not found.get("id"):
        raise PermanentError(f"Cliniko returned no patient for {patient_id}")
    return found


def fetch_client(credentials: Mapping[str, Any], patient_id: str) -> Client:
    found = patient(credentials, patient_id)
    return Client(
        id=str(found.get("id") or patient_id),
        email=_text(found.get("email")),
        first_name=_text(found.get("first_name")),
        locale=None,
    )


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
