"""Acuity Scheduling adapter: webhooks that name an appointment in, notes out.

Acuity never says "completed": an appointment is scheduled (perhaps rescheduled), then its
time passes, unless it is cancelled or cancelled as a no-show. Rapport therefore derives
completion from the end time (``Completion.END_TIME``) and, before acting, reads the
appointment again with :func:`fetch_appointment`, which reports ``completed`` only for one
that is neither cancelled nor a no-show once it has ended. Acuity's webhooks carry the
appointment's id and nothing else (``events_name_only``): every event is read back the same
way.

What Rapport writes, per client (:mod:`~handlers.acuity.notes`):

- its own block in the client's ``notes`` when Acuity lets Rapport name that client
  unambiguously (Acuity addresses clients by name, not id), otherwise in the visit's own
  ``notes``; the therapist's text around it is kept byte for byte;
- when the client books again while talking points are open, its block in the next
  appointment's ``notes`` (admin-only notes, which clients never see).

The adapter is a package of small modules, one job each:

- :mod:`~handlers.acuity.webhooks`: the signature, the delivery id, deliveries as events;
- :mod:`~handlers.acuity.appointments`: the status map, the end time, the client id,
  :func:`fetch_appointment`, :func:`fetch_client`;
- :mod:`~handlers.acuity.notes`: the write-back and the next appointment's notes;
- :mod:`~handlers.acuity.install`: trying the credentials, the time zone, the webhooks;
- :mod:`~handlers.acuity.platform`: the declaration and how a clinic connects;
- :mod:`~handlers.acuity.api`: the HTTP calls and Acuity's answers as Rapport's errors.

Each Acuity fact is cited in the docstring of the module that relies on it, with what is
not confirmed there and how it is handled defensively. Acuity's own reference pages
(https://developers.acuityscheduling.com) win over the community OpenAPI description the
tests' stand-in answers in (shared/platforms/acuity/swagger.json).
"""

from __future__ import annotations

from handlers.acuity.api import BASE_URL, DEFAULT_TIMEOUT
from handlers.acuity.appointments import client_id_for, fetch_appointment, fetch_client, status_of
from handlers.acuity.install import EVENTS, WEBHOOK_LIMIT, subscribe, unsubscribe
from handlers.acuity.notes import NOTES_LIMIT, write_back, write_booking_note
from handlers.acuity.platform import PLATFORM, AcuityPlatform
from handlers.acuity.webhooks import (
    ACTION_STATUS,
    IGNORED_ACTIONS,
    SIGNATURE_HEADER,
    delivery_id,
    parse,
    sign,
    verify,
)

NOTE_LIMIT = PLATFORM.capabilities.note_limit

__all__ = [
    "PLATFORM",
    "AcuityPlatform",
    "NOTE_LIMIT",
    "verify",
    "sign",
    "delivery_id",
    "parse",
    "fetch_appointment",
    "fetch_client",
    "client_id_for",
    "status_of",
    "write_back",
    "write_booking_note",
    "subscribe",
    "unsubscribe",
    "ACTION_STATUS",
    "BASE_URL",
    "DEFAULT_TIMEOUT",
    "EVENTS",
    "IGNORED_ACTIONS",
    "NOTES_LIMIT",
    "SIGNATURE_HEADER",
    "WEBHOOK_LIMIT",
]
