"""Appointments as their platform last described them, and what each change sets off.

:func:`apply_event` is the one place an :class:`~handlers.base.AppointmentEvent` changes
an appointment: completed → plan a check-in; cancelled or no-show → cancel the one
waiting; booked → on platforms that never say "completed" (``Completion.END_TIME``) or may
not say it every time (``Capabilities.reread_at_end``), check at the end whether the visit
took place (:func:`check_completion`), and put open talking points on the booking. Events
older than what is stored are ignored, so events may come twice and in any order. A
visit the platform calls completed only long after it ended gets no check-in.

A polled platform (``Completion.POLLING``) gets no check at the end: its poll reads what
ended and reports ``completed`` itself, in the list requests it makes anyway, so a check
would cost one more request per visit, and could answer before the poll's own grace for
marking "did not arrive" has passed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from handlers.base import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    RECONNECT_ERRORS,
    AppointmentEvent,
    Capabilities,
    Completion,
    PermanentError,
    TransientError,
)
from plugin.clinics.platforms import credentials_for, platform_of, platform_refused
from plugin.pipeline import booking_notes, check_ins, sending
from plugin.pipeline.check_ins import now, timing_for
from plugin.store import database
from plugin.store.models import Appointment, Clinic
from plugin.tasks.queue import backoff_seconds, enqueue, retry_later
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)

CHECKED_AT_THE_END = (Completion.END_TIME,)


def checked_at_the_end(capabilities: Capabilities) -> bool:
    """Whether Rapport reads a booked visit again once it has ended."""
    return capabilities.completion in CHECKED_AT_THE_END or capabilities.reread_at_end


# How long after a visit ended Rapport still asks the platform whether it took place
# (and so may send its check-in): the sweeper's catch-up, and every completion check.
CHECK_HORIZON = timedelta(days=2)
# A booking that has ended but that the platform cannot call completed yet (a request
# the seller never accepted) is asked about again, later and later: after about 15
# minutes, then doubling up to every 6 hours, within the two days above.
RECHECK_BASE_SECONDS = 900
RECHECK_CAP_SECONDS = 6 * 3600


@job
def check_completion(appointment_id: int):
    """The appointment's end has passed: ask the platform whether it still stands.

    Whatever the answer, the booking is not asked about again in a loop: settled by the
    platform's answer, marked ``unconfirmed`` when the platform cannot say (gone, out of
    reach), asked again later and later while it is not accepted, and left for after
    reconnecting when the clinic must reconnect.
    """
    with database.session() as db:
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
    try:
        current = platform_of(clinic).fetch_appointment(credentials_for(clinic), external_id)
    except RECONNECT_ERRORS as error:
        # A missing permission fails every booking of the clinic alike until it connects
        # again granting it, so it is the clinic's state, not one booking's.
        platform_refused(clinic.id, error)
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
    # The platform reports "completed" for a booking still standing once it has ended; a
    # booking moved to later is "booked" again (and checked at its new end), a cancelled
    # one cancels its check-in.
    moment = now()
    with database.session() as db:
        appointment = db.get(Appointment, appointment_id)
        follow_ups = apply_event(db, appointment.clinic, current)
        if appointment.status == BOOKED and appointment.end_at and appointment.end_at <= moment:
            # Ended but not completed (a request the seller has not accepted): asked again
            # by the sweeper, later each time, rather than re-queued at once.
            appointment.check_attempts = attempts + 1
            delay = backoff_seconds(attempts + 1, base=RECHECK_BASE_SECONDS,
                                    cap=RECHECK_CAP_SECONDS)
            appointment.next_check_at = moment + timedelta(seconds=delay)
            appointment.check_detail = ("ended, but the platform has not said the visit "
                                        "took place (accepted, completed)")
            follow_ups = []
    for step in follow_ups:
        step()
    return None


def queue_completion_check(appointment_id: int, end_at: datetime | None,
                           at: datetime | None = None, *, nudge: str | None = None) -> bool:
    """Queue the check for the appointment's current end: a booking moved to another time
    gets a check of its own for its new end."""
    stamp = int(end_at.timestamp()) if end_at else 0
    return enqueue(check_completion, appointment_id,
                   id_parts=(appointment_id, stamp, *filter(None, [nudge])), at=at)


def told_long_after(event: AppointmentEvent, told_at: datetime | None = None) -> bool:
    """Whether the platform calls a visit completed more than :data:`CHECK_HORIZON` after
    it ended (``told_at``: when it said so, the event's own time by default): a front desk
    tidying up old visits, not a visit to thank anyone for."""
    told_at = told_at or event.occurred_at
    return bool(event.status == COMPLETED and event.end and told_at > event.end + CHECK_HORIZON)


def apply_event(db, clinic: Clinic, event: AppointmentEvent, *,
                check_in: bool = True, after_inbox: int | None = None) -> list:
    """Apply one event to its appointment; returns what to queue once committed.
    ``check_in`` False: a completion is recorded without planning a check-in.
    ``after_inbox``: the inbox event it came in (its email waits for earlier ones)."""
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
        # booked (when its note is edited afterwards): it stays completed.
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
        if not check_in:
            log.info("completion.too-old: appointment %s", event.appointment_id)
            appointment.check_detail = ("the platform called it completed more than two days "
                                        "after it ended: too long past for a check-in")
            return []
        planned = check_ins.plan(db, appointment, event.client)
        if planned is None:
            return []
        check_in_id, send_at = planned.id, planned.send_at
        return [lambda: sending.queue_send(check_in_id, send_at, after_inbox=after_inbox)]
    if event.status in (CANCELLED, NO_SHOW):
        check_ins.cancel_pending(db, appointment, reason=f"the appointment was {event.status}")
        return []
    if event.status == BOOKED:
        return _after_booking(db, clinic, appointment)
    return []


def _is_stale(appointment: Appointment, event: AppointmentEvent) -> bool:
    # Equal versions are re-applied: every action below is idempotent.
    if event.version is not None and appointment.version is not None:
        return event.version < appointment.version
    # Platforms stamp their events to the second, while what Rapport read itself carries
    # the fraction: an event within the second of that read may be the later fact.
    return (appointment.event_at is not None
            and event.occurred_at < appointment.event_at.replace(microsecond=0))


def _after_booking(db, clinic: Clinic, appointment: Appointment) -> list:
    steps = []
    if checked_at_the_end(platform_of(clinic).capabilities) and appointment.end_at:
        at = appointment.end_at + timedelta(minutes=timing_for(clinic).completion_grace_minutes)
        # What the sweeper goes by if the scheduled check below is lost.
        appointment.next_check_at, appointment.check_attempts = at, 0
        appointment_id, end_at = appointment.id, appointment.end_at
        steps.append(lambda: queue_completion_check(appointment_id, end_at, at))
    steps += booking_notes.steps_for_booking(db, clinic, appointment)
    return steps


def heard_of_long_after(appointment: Appointment) -> bool:
    """Whether the platform's latest word on a booked visit came more than
    :data:`CHECK_HORIZON` after it ended. A booking told of while it was current is
    checked whenever its check runs (the example in Square's documentation included:
    told of on 8 December, ended on the 17th)."""
    return bool(appointment.end_at and appointment.event_at
                and appointment.event_at > appointment.end_at + CHECK_HORIZON)


def _record_check(appointment_id: int, detail: str, **changes) -> None:
    """What a completion check found, on a booking still marked booked."""
    with database.session() as db:
        appointment = db.get(Appointment, appointment_id)
        if appointment is not None and appointment.status == BOOKED:
            appointment.check_detail = detail[:2000]
            for name, value in changes.items():
                setattr(appointment, name, value)
