"""RQ jobs. Each takes ids, runs in an application context and is idempotent.

ingest_events    parse stored inbox events, update their appointments, act on each status
check_completion re-read an appointment whose platform has no "completed" status
write_booking_note  open talking points onto the client's next booking (Square)
send_invitation / send_reminder / expire_invitation   (plugin.invitations)
write_back       deliver a response's scores and note to the platform (plugin.writeback)
sweep            re-queue what was stored but never processed; drop expired data
refresh_tokens   renew OAuth tokens before they expire
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

import handlers
from handlers.base import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    RECONNECT_ERRORS,
    AppointmentEvent,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    PermanentError,
    TransientError,
)
from plugin import accounts, booking_notes, clinics, invitations, storage, sweeper, writeback
from plugin.invitations import now
from plugin.models import Appointment, Clinic, InboxEvent
from plugin.queue import backoff_seconds, enqueue, retry_later
from plugin.runtime import job

log = logging.getLogger(__name__)

# A booking that has ended but that the platform cannot call completed yet (a request
# the seller never accepted) is asked about again, later and later: after about 15
# minutes, then doubling up to every 6 hours, within the sweeper's two days.
RECHECK_BASE_SECONDS = 900
RECHECK_CAP_SECONDS = 6 * 3600


@job
def ingest_events(inbox_ids: list[int]):
    """Each event in its own transaction; a failed one is retried without the others."""
    failures = []
    for inbox_id in inbox_ids:
        try:
            ingest_event(inbox_id)
        except Exception as error:  # noqa: BLE001 - recorded, then the job fails to retry
            failures.append(inbox_id)
            log.exception("ingest.failed: inbox %s", inbox_id)
            _record_failure(inbox_id, error)
    if failures:
        raise IngestError(f"{len(failures)} of {len(inbox_ids)} events failed: {failures}")
    return None


class IngestError(RuntimeError):
    """Some events of a batch could not be processed; the job is retried for them."""


def _record_failure(inbox_id: int, error: Exception) -> None:
    with storage.session() as db:
        row = db.get(InboxEvent, inbox_id)
        if row is not None:
            row.last_error = f"{error.__class__.__name__}: {error}"[:2000]


def ingest_event(inbox_id: int):
    follow_ups: list = []
    with storage.session() as db:
        # Locked, so a duplicate run waits and then finds the event processed.
        row = db.get(InboxEvent, inbox_id, with_for_update=True)
        if row is None or row.processed_at is not None:
            return None
        row.attempts += 1
        clinic = row.clinic
        adapter = handlers.adapter(clinic.platform)
        inbound = InboundRequest(body=row.body or b"", headers=row.headers)
        try:
            events = adapter.parse(inbound)
        except IgnoredEvent as error:
            log.info("ingest.ignored: inbox %s: %s", inbox_id, error)
            events = []
        except PayloadError as error:
            # Verified and validated at the door, so only a changed parser gets here.
            row.last_error = str(error)
            events = []
        for event in events:
            follow_ups += apply_event(db, clinic, event)
        row.processed_at = now()
    for step in follow_ups:
        step()
    return None


def apply_event(db, clinic: Clinic, event: AppointmentEvent) -> list:
    """Apply one event to its appointment; returns what to queue once committed."""
    # Read afresh once locked: the session may hold the row as it was before another
    # worker's event changed it (check_completion reads it before asking the platform).
    appointment = db.scalar(select(Appointment).where(
        Appointment.clinic_id == clinic.id, Appointment.external_id == event.appointment_id)
        .with_for_update().execution_options(populate_existing=True))
    if appointment is not None and _is_stale(appointment, event):
        log.info("ingest.stale-event: appointment %s event %s", event.appointment_id,
                 event.event_id)
        return []
    if appointment is not None and appointment.status == COMPLETED and event.status == BOOKED:
        # A platform without a "completed" status keeps calling a visit that happened
        # booked (Square: ACCEPTED, when its note is edited afterwards): it stays completed.
        appointment.version = event.version if event.version is not None else appointment.version
        appointment.event_at = max(event.occurred_at, appointment.event_at or event.occurred_at)
        return []
    if appointment is None:
        appointment = Appointment(clinic_id=clinic.id, external_id=event.appointment_id,
                                  client_external_id=event.client.id, status=event.status)
        appointment.clinic = clinic
        db.add(appointment)
    appointment.status = event.status
    appointment.client_external_id = event.client.id
    appointment.start_at = event.start or appointment.start_at
    appointment.end_at = event.end or appointment.end_at
    if event.therapist:
        appointment.therapist_id = event.therapist.id
        appointment.therapist_name = event.therapist.name or appointment.therapist_name
    appointment.location_id = event.location_id or appointment.location_id
    appointment.version = event.version if event.version is not None else appointment.version
    appointment.event_at = event.occurred_at
    db.flush()

    if event.status == COMPLETED:
        appointment.completed_at = appointment.completed_at or event.occurred_at
        invitation = invitations.plan(db, appointment, event.client)
        return [lambda: invitations.schedule_send(invitation)] if invitation else []
    if event.status in (CANCELLED, NO_SHOW):
        invitations.cancel_pending(db, appointment, reason=f"the appointment was {event.status}")
        return []
    if event.status == BOOKED:
        return _after_booking(db, clinic, appointment)
    return []


def _is_stale(appointment: Appointment, event: AppointmentEvent) -> bool:
    # Equal versions are re-applied: every action below is idempotent.
    if event.version is not None and appointment.version is not None:
        return event.version < appointment.version
    return appointment.event_at is not None and event.occurred_at < appointment.event_at


def _after_booking(db, clinic: Clinic, appointment: Appointment) -> list:
    steps = []
    adapter = handlers.adapter(clinic.platform)
    if adapter.COMPLETION == "end_time" and appointment.end_at:
        rules = invitations.rules_for(clinic)
        at = appointment.end_at + timedelta(minutes=rules.completion_grace_minutes)
        # What the sweeper goes by if the scheduled check below is lost.
        appointment.next_check_at, appointment.check_attempts = at, 0
        appointment_id, stamp = appointment.id, int(appointment.end_at.timestamp())
        steps.append(lambda: enqueue("plugin.jobs.check_completion", appointment_id,
                                     job_id=f"complete-{appointment_id}-{stamp}", at=at))
    steps += booking_notes.steps_for_booking(db, clinic, appointment)
    return steps


def heard_of_long_after(appointment: Appointment) -> bool:
    """Whether the platform's latest word on a booked visit came more than
    ``sweeper.CHECK_HORIZON`` after it ended. A booking told of while it was current is
    checked whenever its check runs (the example in Square's documentation included:
    told of on 8 December, ended on the 17th)."""
    return bool(appointment.end_at and appointment.event_at
                and appointment.event_at > appointment.end_at + sweeper.CHECK_HORIZON)


@job
def check_completion(appointment_id: int):
    """The appointment's end has passed: ask the platform whether it still stands.

    Whatever the answer, the booking is not asked about again in a loop: settled by the
    platform's answer, marked ``unconfirmed`` when the platform cannot say (gone, out of
    reach), asked again later and later while it is not accepted, and left for after
    reconnecting when the clinic must reconnect.
    """
    with storage.session() as db:
        appointment = db.get(Appointment, appointment_id)
        if appointment is None or appointment.status != BOOKED:
            return None
        clinic = appointment.clinic
        if clinic.status != "active":
            return None
        if heard_of_long_after(appointment):
            # An old booking edited in the platform long after the visit (a seller tidying
            # up): "thank you for your visit" would come out of the blue, so no check-in.
            log.info("completion.too-old: appointment %s", appointment_id)
            appointment.next_check_at = None
            appointment.check_detail = ("the platform spoke of it more than two days after "
                                        "it ended: too long past for a check-in")
            return None
        external_id, attempts = appointment.external_id, appointment.check_attempts or 0
    adapter = handlers.adapter(clinic.platform)
    try:
        current = adapter.fetch_appointment(accounts.credentials_for(clinic), external_id)
    except RECONNECT_ERRORS as error:
        # A missing permission fails every booking of the clinic alike until it connects
        # again granting it, so it is the clinic's state, not one booking's.
        clinics.platform_refused(clinic.id, error)
        return None
    except TransientError as error:
        retry = retry_later(error.retry_after)
        log.warning("completion.retry: appointment %s in %s s: %s", appointment_id,
                    retry.intervals[0], error)
        # The sweeper leaves it to this retry, and takes over only if it is lost.
        _record_check(appointment_id, str(error),
                      next_check_at=now() + timedelta(seconds=retry.intervals[0]))
        return retry
    except PermanentError as error:
        # Gone from the platform, or out of Rapport's reach: no check-in for a visit we
        # cannot confirm, and no asking again.
        log.warning("completion.unconfirmed: appointment %s: %s", appointment_id, error)
        _record_check(appointment_id, str(error), status="unconfirmed", next_check_at=None)
        return None
    # The adapter reports "completed" for a booking still standing once it has ended; a
    # booking moved to later is "booked" again (and checked at its new end), a cancelled
    # one cancels its follow-up.
    moment = now()
    with storage.session() as db:
        appointment = db.get(Appointment, appointment_id)
        follow_ups = apply_event(db, appointment.clinic, current)
        if appointment.status == BOOKED and appointment.end_at and appointment.end_at <= moment:
            # Ended but not completed: the seller has not accepted the request. Asked
            # again by the sweeper, later each time, rather than re-queued at once.
            appointment.check_attempts = attempts + 1
            delay = backoff_seconds(attempts + 1, base=RECHECK_BASE_SECONDS,
                                    cap=RECHECK_CAP_SECONDS)
            appointment.next_check_at = moment + timedelta(seconds=delay)
            appointment.check_detail = "ended, but the platform has not accepted the booking"
            follow_ups = []
    for step in follow_ups:
        step()
    return None


def _record_check(appointment_id: int, detail: str, **changes) -> None:
    """What a completion check found, on a booking still marked booked."""
    with storage.session() as db:
        appointment = db.get(Appointment, appointment_id)
        if appointment is not None and appointment.status == BOOKED:
            appointment.check_detail = detail[:2000]
            for name, value in changes.items():
                setattr(appointment, name, value)


@job
def send_invitation(invitation_id: int):
    invitations.send(invitation_id)


@job
def send_reminder(invitation_id: int):
    invitations.remind(invitation_id)


@job
def expire_invitation(invitation_id: int):
    invitations.expire(invitation_id)


@job
def write_back(write_back_id: int):
    return writeback.deliver(write_back_id)


@job
def write_booking_note(appointment_id: int):
    return booking_notes.write(appointment_id)


@job
def sweep():
    return sweeper.sweep()


@job
def refresh_tokens():
    """Renew platform tokens before they expire (daily)."""
    return accounts.refresh_due()
