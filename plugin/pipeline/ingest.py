"""Ingesting stored events: from the inbox to the appointments they describe.

The receiver parsed each event at the door and kept what it read with the raw body
(``InboxEvent.events``); this job acts on that, :data:`CHUNK` events in one transaction
with a savepoint each, so a failed one is rolled back and retried without the others. For
a platform whose events name the appointment and little else
(``Capabilities.events_name_only``), the appointment is read from the platform first, and
what the platform answers, as of that read, is what is applied: an event's own
placeholder status (a "changed" reported as booked) never is. A visit the platform calls
completed more than two days after it ended (an old booking tidied up) is recorded
without a check-in.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from handlers.base import (
    RECONNECT_ERRORS,
    AppointmentEvent,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    PermanentError,
    TransientError,
    event_from_dict,
)
from plugin.clinics.platforms import credentials_for, platform_of, platform_refused
from plugin.pipeline.appointments import apply_event, told_long_after
from plugin.pipeline.check_ins import now
from plugin.store import database
from plugin.store.models import Clinic, InboxEvent
from plugin.tasks.queue import enqueue
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)


class IngestError(RuntimeError):
    """Some events of a batch could not be processed; the job is retried for them."""


CHUNK = 50  # events applied in one transaction


@job
def ingest_events(inbox_ids: list[int]):
    """The events, :data:`CHUNK` at a time: one read, then one transaction in which each
    event has a savepoint of its own. An event that must be read from its platform first
    (or was stored before events were kept) is taken alone, the platform asked outside
    any transaction."""
    failures = []
    for start in range(0, len(inbox_ids), CHUNK):
        failures += _ingest_chunk(inbox_ids[start:start + CHUNK])
    if failures:
        raise IngestError(f"{len(failures)} of {len(inbox_ids)} events failed: {failures}")
    return None


def _ingest_chunk(inbox_ids: list[int]) -> list[int]:
    """Ingest these events; the ids of those that failed and are to be tried again."""
    alone, ready = [], []
    with database.reading() as db:
        rows = db.scalars(select(InboxEvent).where(
            InboxEvent.id.in_(inbox_ids), InboxEvent.processed_at.is_(None))
            .options(joinedload(InboxEvent.clinic))).all()
        for row in rows:
            if row.events is None or platform_of(row.clinic).capabilities.events_name_only:
                alone.append(row.id)
            else:
                ready.append(row.id)
    failures = []
    for inbox_id in alone:
        try:
            ingest_event(inbox_id)
        except Exception as error:  # noqa: BLE001 - recorded, then the job fails to retry
            log.exception("ingest.failed: inbox %s", inbox_id)
            if not _record_failure(inbox_id, error):
                failures.append(inbox_id)
    counted = _count_attempts(ready)
    follow_ups: list = []
    failed: list[tuple[int, Exception]] = []
    with database.session() as db:
        for inbox_id in counted:
            try:
                with db.begin_nested():
                    follow_ups += _apply(db, inbox_id, None)
            except Exception as error:  # noqa: BLE001 - rolled back to its savepoint
                log.exception("ingest.failed: inbox %s", inbox_id)
                failed.append((inbox_id, error))
    for step in follow_ups:
        step()
    failures += [inbox_id for inbox_id, error in failed
                 if not _record_failure(inbox_id, error)]
    return failures


def _apply(db, inbox_id: int, told: list[tuple[AppointmentEvent, datetime]] | None) -> list:
    """Apply a stored event and mark it processed; what to queue once committed (nothing
    when another run processed it first). ``told``: its events as read from the platform,
    with when the platform told of each; None: the events stored with it."""
    # Locked, so a duplicate run waits and then finds the event processed.
    row = db.get(InboxEvent, inbox_id, with_for_update=True, populate_existing=True)
    if row is None or row.processed_at is not None:
        return []
    if told is None:
        told = [(event, event.occurred_at) for event in _stored_events(row)]
    follow_ups: list = []
    for event, told_at in told:
        follow_ups += apply_event(db, row.clinic, event, after_inbox=row.id,
                                  check_in=not told_long_after(event, told_at))
    row.processed_at = now()
    return follow_ups


def queue_ingest(inbox_ids: list[int], *, nudge: str | None = None) -> bool:
    """Queue one job for these stored events, named after the first."""
    return enqueue(ingest_events, inbox_ids, id_parts=(inbox_ids[0], *filter(None, [nudge])))


def _record_failure(inbox_id: int, error: Exception) -> bool:
    """Keep the error with the event; True when the event was given up on. A platform
    out of reach (TransientError) does not count as an attempt: the event waits for it,
    up to the inbox's retention (the sweeper)."""
    with database.session() as db:
        row = db.get(InboxEvent, inbox_id)
        if row is None:
            return True
        row.last_error = f"{error.__class__.__name__}: {error}"[:2000]
        if isinstance(error, TransientError):
            row.attempts = max(0, row.attempts - 1)
            return False
        if row.attempts >= current_app.config["INBOX_MAX_ATTEMPTS"]:
            give_up(row, f"gave up after {row.attempts} attempts")
            return True
        return False


def give_up(row: InboxEvent, why: str) -> None:
    """Stop trying to process a stored event: it counts as processed (so it is deleted
    with the others after the retention period), its body and what was read in it go at
    once, and why stays, with the last error, for the admin (``rapport clinic list``)."""
    log.error("ingest.given-up: inbox %s: %s: %s", row.id, why, row.last_error)
    row.last_error = f"{why}: {row.last_error or 'no error recorded'}"[:2000]
    row.processed_at, row.body, row.events = now(), None, None


def _count_attempt(inbox_id: int) -> bool:
    """Count this attempt before making it, so that one cut short (a killed worker, the
    job's timeout) counts too; False when the event is given up on (past the limit)."""
    return _count_attempts([inbox_id]) == [inbox_id]


def _count_attempts(inbox_ids: list[int]) -> list[int]:
    """:func:`_count_attempt` for several events in one transaction: those still to try."""
    if not inbox_ids:
        return []
    counted = []
    with database.session() as db:
        rows = db.scalars(select(InboxEvent).where(InboxEvent.id.in_(inbox_ids))).all()
        for row in sorted(rows, key=lambda row: inbox_ids.index(row.id)):
            if row.processed_at is not None:
                continue
            if row.attempts >= current_app.config["INBOX_MAX_ATTEMPTS"]:
                give_up(row, f"gave up after {row.attempts} attempts, the last one cut short")
                continue
            row.attempts += 1
            counted.append(row.id)
    return counted


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
    if not _count_attempt(inbox_id):
        return None
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
    # Each event, and when the platform told of it (a read's own time is when Rapport asked).
    told = [(event, event.occurred_at) for event in events]
    if events and platform_of(clinic).capabilities.events_name_only:
        if clinic.status != "active":
            _uncount_attempt(inbox_id)  # waiting for the clinic is not a failed attempt
            return None  # waits, unprocessed, for the clinic to reconnect: no call meanwhile
        told = _read_from_platform(clinic, told)
        if told is None:
            _uncount_attempt(inbox_id)
            return None  # waits, unprocessed, for the clinic to reconnect
    with database.session() as db:
        follow_ups = _apply(db, inbox_id, told)
    for step in follow_ups:
        step()
    return None


def _uncount_attempt(inbox_id: int) -> None:
    with database.session() as db:
        row = db.get(InboxEvent, inbox_id)
        if row is not None and row.attempts > 0:
            row.attempts -= 1


def _read_from_platform(clinic: Clinic, told: list[tuple[AppointmentEvent, datetime]]
                        ) -> list[tuple[AppointmentEvent, datetime]] | None:
    """Each event as the platform describes its appointment now, with when the platform
    told of it (None: the clinic must reconnect first). A platform that is out of reach
    raises, and the job is retried.

    The read keeps its own time: it says how the appointment stands as of the read, so it
    is ordered against what Rapport learnt meanwhile (a completion check that ran while this
    delivery waited) by when it was read, not by when the delivery came."""
    platform = platform_of(clinic)
    read = []
    for event, told_at in told:
        try:
            current = platform.fetch_appointment(credentials_for(clinic), event.appointment_id)
        except RECONNECT_ERRORS as error:
            platform_refused(clinic.id, error)
            return None
        except PermanentError as error:
            log.warning("ingest.unreadable: appointment %s: %s", event.appointment_id, error)
            continue
        read.append((replace(current, event_id=event.event_id), told_at))
    return read
