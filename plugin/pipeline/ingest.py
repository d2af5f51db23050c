"""Ingesting stored events: from the inbox to the appointments they describe.

The receiver parsed each event at the door and kept what it read with the raw body
(``InboxEvent.events``); this job acts on that, each event in its own transaction. For
a platform whose events name the appointment and little else
(``Capabilities.events_name_only``), the appointment is read from the platform first.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from handlers.base import (
    RECONNECT_ERRORS,
    AppointmentEvent,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    PermanentError,
    event_from_dict,
)
from plugin.clinics.platforms import credentials_for, platform_of, platform_refused
from plugin.pipeline.appointments import apply_event
from plugin.pipeline.check_ins import now
from plugin.store import database
from plugin.store.models import Clinic, InboxEvent
from plugin.tasks.queue import enqueue
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)


CHUNK = 50  # events applied in one transaction


class IngestError(RuntimeError):
    """Some events of a batch could not be processed; the job is retried for them."""


@job
def ingest_events(inbox_ids: list[int]):
    """The events, :data:`CHUNK` at a time: one read, then one transaction in which each
    event has a savepoint of its own, so a failed one is rolled back, recorded and
    retried without the others. An event that must be read from its platform first is
    taken alone, the platform asked outside any transaction."""
    failures = []
    for start in range(0, len(inbox_ids), CHUNK):
        failures += _ingest_chunk(inbox_ids[start:start + CHUNK])
    if failures:
        raise IngestError(f"{len(failures)} of {len(inbox_ids)} events failed: {failures}")
    return None


def _ingest_chunk(inbox_ids: list[int]) -> list[int]:
    """Ingest these events; the ids of those that failed."""
    alone, ready = [], []
    with database.session() as db:
        rows = db.scalars(select(InboxEvent).where(
            InboxEvent.id.in_(inbox_ids), InboxEvent.processed_at.is_(None))
            .options(joinedload(InboxEvent.clinic))).all()
        for row in rows:
            if row.events is None or platform_of(row.clinic).capabilities.events_name_only:
                alone.append(row.id)
            else:
                ready.append((row.id, [event_from_dict(event) for event in row.events]))
    failures = []
    for inbox_id in alone:
        try:
            ingest_event(inbox_id)
        except Exception as error:  # noqa: BLE001 - recorded, then the job fails to retry
            failures.append(inbox_id)
            log.exception("ingest.failed: inbox %s", inbox_id)
            _record_failure(inbox_id, error)
    follow_ups: list = []
    with database.session() as db:
        failed = []
        for inbox_id, events in ready:
            try:
                with db.begin_nested():
                    follow_ups += _apply(db, inbox_id, events)
            except Exception as error:  # noqa: BLE001 - rolled back to its savepoint
                log.exception("ingest.failed: inbox %s", inbox_id)
                failed.append((inbox_id, error))
        for inbox_id, error in failed:
            db.execute(update(InboxEvent).where(InboxEvent.id == inbox_id).values(
                last_error=f"{error.__class__.__name__}: {error}"[:2000]))
    for step in follow_ups:
        step()
    return failures + [inbox_id for inbox_id, _ in failed]


def _apply(db, inbox_id: int, events: list[AppointmentEvent]) -> list:
    """Apply the stored event's events and mark it processed; what to queue once
    committed (nothing when another run processed it first)."""
    # Locked, so a duplicate run waits and then finds the event processed.
    row = db.get(InboxEvent, inbox_id, with_for_update=True, populate_existing=True)
    if row is None or row.processed_at is not None:
        return []
    row.attempts += 1
    follow_ups: list = []
    for event in events:
        follow_ups += apply_event(db, row.clinic, event)
    row.processed_at = now()
    return follow_ups


def queue_ingest(inbox_ids: list[int], *, nudge: str | None = None) -> bool:
    """Queue one job for these stored events, named after the first."""
    return enqueue(ingest_events, inbox_ids, id_parts=(inbox_ids[0], *filter(None, [nudge])))


def _record_failure(inbox_id: int, error: Exception) -> None:
    with database.session() as db:
        row = db.get(InboxEvent, inbox_id)
        if row is not None:
            row.last_error = f"{error.__class__.__name__}: {error}"[:2000]


def _stored_events(row: InboxEvent) -> list[AppointmentEvent]:
    """What the receiver read; an event stored before the receiver kept that is read
    from its body."""
    if row.events is not None:
        return [event_from_dict(event) for event in row.events]
    try:
        return platform_of(row.clinic).parse(
            InboundRequest(body=row.body or b"", headers=row.headers))
    except IgnoredEvent as error:
        log.info("ingest.ignored: inbox %s: %s", row.id, error)
        return []


def ingest_event(inbox_id: int):
    with database.session() as db:
        row = db.get(InboxEvent, inbox_id)
        if row is None or row.processed_at is not None:
            return None
        clinic = row.clinic
        try:
            events = _stored_events(row)
        except PayloadError as error:
            # Verified and validated at the door, so only a changed parser gets here.
            row.last_error, row.processed_at = str(error), now()
            return None
    if events and platform_of(clinic).capabilities.events_name_only:
        events = _read_from_platform(clinic, events)
        if events is None:
            return None  # waits, unprocessed, for the clinic to reconnect
    with database.session() as db:
        follow_ups = _apply(db, inbox_id, events)
    for step in follow_ups:
        step()
    return None


def _read_from_platform(clinic: Clinic,
                        events: list[AppointmentEvent]) -> list[AppointmentEvent] | None:
    """Each event as the platform describes its appointment now (None: the clinic must
    reconnect first). A platform that is out of reach raises, and the job is retried."""
    platform = platform_of(clinic)
    read = []
    for event in events:
        try:
            current = platform.fetch_appointment(credentials_for(clinic), event.appointment_id)
        except RECONNECT_ERRORS as error:
            platform_refused(clinic.id, error)
            return None
        except PermanentError as error:
            log.warning("ingest.unreadable: appointment %s: %s", event.appointment_id, error)
            continue
        read.append(replace(current, event_id=event.event_id, occurred_at=event.occurred_at))
    return read
