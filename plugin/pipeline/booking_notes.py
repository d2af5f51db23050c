"""Talking points on the client's next booking, where the therapist looks on the day.

For platforms whose bookings carry a note of their own (``NotePlace.NEXT_BOOKING``, e.g.
a booking's seller note, which clients never see): when a client books again while the
talking points of their last answers are still open — no visit has happened since —
Rapport's block goes onto that booking too. Both orders are covered: booking after
answering, and answering after booking; and a note skipped while the clinic was
disconnected is queued again when it reconnects. Each booking gets each response's block
once (``noted_response_id``), and the write itself replaces only Rapport's block, so a
repeat changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from handlers.base import (
    RECONNECT_ERRORS,
    ConflictError,
    Note,
    NotePlace,
    PermanentError,
    TransientError,
)
from plugin.clinics.platforms import credentials_for, names_where, platform_of, platform_refused
from plugin.pipeline.assessment import note_of
from plugin.store import database
from plugin.store.models import Appointment, Clinic, Response
from plugin.tasks.queue import enqueue, retry_later
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)


def _with_booking_notes(capabilities) -> bool:
    return NotePlace.NEXT_BOOKING in capabilities.note_places


def supported(clinic: Clinic) -> bool:
    return _with_booking_notes(platform_of(clinic).capabilities)


@job
def write_booking_note(appointment_id: int):
    return write(appointment_id)


def open_response(db: Session, clinic_id: int, client_id: str) -> Response | None:
    """The client's latest answers with talking points, if no visit has happened since."""
    latest = db.scalars(select(Response).where(
        Response.clinic_id == clinic_id, Response.client_external_id == client_id)
        .order_by(Response.submitted_at.desc())).first()
    if latest is None or not latest.result.get("talking_points"):
        return None
    visited_since = db.scalar(select(exists().where(
        Appointment.clinic_id == clinic_id, Appointment.client_external_id == client_id,
        Appointment.status == "completed", Appointment.completed_at > latest.submitted_at)))
    return None if visited_since else latest


def _job(appointment_id: int, response_id: int, requeue_finished: bool = True):
    """Queuing the booking's note for these answers, as a step to take once committed.
    Once a run is over, the same note may be queued again: a run that found the clinic
    disconnected wrote nothing, and the job is idempotent anyway."""
    return lambda: enqueue(write_booking_note, appointment_id,
                           id_parts=(appointment_id, response_id),
                           requeue_finished=requeue_finished)


def steps_for_booking(db: Session, clinic: Clinic, appointment: Appointment) -> list:
    """On a new or changed booking: queue its note if talking points are open."""
    if not supported(clinic) or appointment.status != "booked":
        return []
    if appointment.start_at and appointment.start_at <= datetime.now(timezone.utc):
        return []
    response = open_response(db, clinic.id, appointment.client_external_id)
    if response is None or appointment.noted_response_id == response.id:
        return []
    return [_job(appointment.id, response.id)]


def after_delivery(clinic_id: int, client_id: str) -> None:
    """The answers reached the profile: the client's upcoming bookings get them too."""
    for step in _missing_notes(clinic_id, client_id):
        step()


def resume(clinic_id: int) -> int:
    """The clinic reconnected: upcoming bookings get the notes skipped while it was not
    (called with the paused write-backs, ``write_back.resume``). How many."""
    steps = _missing_notes(clinic_id)
    for step in steps:
        step()
    return len(steps)


def lost(db: Session, moment: datetime, limit: int) -> list:
    """The sweeper's part: upcoming bookings of connected clinics still missing open
    talking points, whose job Redis lost (or a worker stopped before queuing it).

    Queued under the job's own id, and only when no job has it: one still queued,
    waiting for its retry or running is left alone, and so is one that gave up (kept
    30 days), rather than asking the platform again every minute.
    """
    platforms = names_where(_with_booking_notes)
    latest = select(Response).where(
        Response.clinic_id == Appointment.clinic_id,
        Response.client_external_id == Appointment.client_external_id,
    ).order_by(Response.submitted_at.desc()).limit(1).correlate(Appointment)
    latest_id = latest.with_only_columns(Response.id).scalar_subquery()
    # In the query, not after it: a client whose latest answers raised no talking point
    # must not fill the batch, every minute, ahead of the bookings that do need a note.
    answered = aliased(Response)
    with_points = exists().where(answered.id == latest_id,
                                 _talking_points_count(db, answered.result) > 0)
    visit = aliased(Appointment)
    visited_since = exists().where(
        visit.clinic_id == Appointment.clinic_id,
        visit.client_external_id == Appointment.client_external_id,
        visit.status == "completed",
        visit.completed_at > latest.with_only_columns(Response.submitted_at).scalar_subquery())
    # The same conditions as ``open_response``, for every upcoming booking in one query.
    waiting = db.execute(select(Appointment.id, latest_id).join(Clinic).where(
        Clinic.platform.in_(platforms), Clinic.status == "active",
        Appointment.status == "booked", Appointment.start_at > moment,
        with_points, ~visited_since,
        or_(Appointment.noted_response_id.is_(None),
            Appointment.noted_response_id != latest_id),
    ).order_by(Appointment.start_at).limit(limit)).all()  # the soonest first
    return [_job(appointment_id, response_id, requeue_finished=False)
            for appointment_id, response_id in waiting]


def _talking_points_count(db: Session, result):
    """How many talking points a stored ``Response.result`` holds (NULL when none are
    recorded), in the database's own JSON functions."""
    if db.bind.dialect.name == "postgresql":
        return func.json_array_length(result["talking_points"])
    return func.json_array_length(result, "$.talking_points")


def _missing_notes(clinic_id: int, client_id: str | None = None) -> list:
    """Upcoming bookings whose client has open talking points they do not carry yet."""
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        if clinic is None or not supported(clinic):
            return []
        query = select(Appointment).where(
            Appointment.clinic_id == clinic_id, Appointment.status == "booked",
            Appointment.start_at > datetime.now(timezone.utc))
        if client_id is not None:
            query = query.where(Appointment.client_external_id == client_id)
        responses: dict[str, Response | None] = {}
        steps = []
        for appointment in db.scalars(query):
            client = appointment.client_external_id
            if client not in responses:
                responses[client] = open_response(db, clinic_id, client)
            response = responses[client]
            if response is not None and appointment.noted_response_id != response.id:
                steps.append(_job(appointment.id, response.id))
    return steps


def write(appointment_id: int):
    """Put the open talking points on this booking (the write_booking_note job)."""
    with database.session() as db:
        appointment = db.get(Appointment, appointment_id)
        if appointment is None or appointment.status != "booked":
            return None
        clinic = appointment.clinic
        response = open_response(db, clinic.id, appointment.client_external_id)
        if response is None or appointment.noted_response_id == response.id:
            return None
        if clinic.status != "active":
            return None  # queued again when the clinic reconnects (resume)
        note: Note = note_of(response.result)
        response_id, booking_id = response.id, appointment.external_id
    try:
        written = platform_of(clinic).write_booking_note(credentials_for(clinic), booking_id,
                                                         note)
    except RECONNECT_ERRORS as error:
        platform_refused(clinic.id, error)
        return None  # queued again when the clinic reconnects (resume)
    except (TransientError, ConflictError) as error:
        return retry_later(getattr(error, "retry_after", None))
    except PermanentError as error:
        # E.g. a seller whose plan does not let applications edit bookings: the talking
        # points stay on the profile, and this booking is not tried again.
        log.warning("booking-note.refused: appointment %s: %s", appointment_id, error)
        written = False
    with database.session() as db:
        db.get(Appointment, appointment_id).noted_response_id = response_id
    log.info("booking-note.%s: appointment %s", "written" if written else "skipped",
             appointment_id)
    return None
