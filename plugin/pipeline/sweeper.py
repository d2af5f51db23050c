"""The sweeper: nothing acknowledged is lost, nothing is kept longer than needed.

Run every minute (RQ cron, see ``plugin/tasks/cron.py``). The database is the source of
truth and jobs are only nudges, so whatever a lost Redis or a killed worker dropped is
found here by its state and age and queued again; the jobs are idempotent, so a nudge
that turns out to be a duplicate does nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import delete, or_, select, update

from plugin.clinics.platforms import names_where
from plugin.metrics import CHECK_INS
from plugin.pipeline import booking_notes
from plugin.pipeline.appointments import (
    CHECK_HORIZON,
    checked_at_the_end,
    queue_completion_check,
)
from plugin.pipeline.check_ins import claim
from plugin.pipeline.ingest import give_up, queue_ingest
from plugin.pipeline.sending import queue_reminder, queue_send
from plugin.pipeline.write_back import queue_write_back
from plugin.store import database
from plugin.store.models import (
    Appointment,
    CheckIn,
    Clinic,
    InboxEvent,
    SurveyLink,
    WriteBack,
    WriteBackAttempt,
)
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)

BATCH = 500


@job
def sweep(now: datetime | None = None) -> dict[str, int]:
    moment = now or datetime.now(timezone.utc)
    config = current_app.config
    stale = moment - timedelta(seconds=config["SWEEP_AFTER_SECONDS"])
    tag = f"sweep{int(moment.timestamp())}"
    counts: dict[str, int] = {}

    with database.session() as db:
        inbox = db.scalars(select(InboxEvent.id).where(
            InboxEvent.processed_at.is_(None), InboxEvent.received_at <= stale).limit(BATCH)).all()
        scheduled = db.scalars(select(CheckIn.id).where(
            CheckIn.status == "scheduled", CheckIn.send_at <= stale).limit(BATCH)).all()
        # A worker died between claiming and sending. Once the mail server had agreed to
        # take the message it may have it, so it is never sent again (the link works if
        # it arrived); before that, it provably never had it, and it is sent again.
        interrupted = db.execute(update(CheckIn).where(
            CheckIn.status == "sending", CheckIn.claimed_at <= stale,
            or_(CheckIn.smtp_stage.is_(None), CheckIn.smtp_stage == "data")).values(
            status="interrupted",
            reason="the worker stopped once the mail server could have the message; not "
                   "sent again, to never email twice",
        )).rowcount
        unsent = _never_handed_over(db, stale)
        reminders = db.scalars(select(CheckIn.id).where(
            CheckIn.status == "sent", CheckIn.reminded_at.is_(None),
            CheckIn.remind_at <= stale).limit(BATCH)).all()
        expired = db.execute(update(CheckIn).where(
            CheckIn.status.in_(("sent", "interrupted")), CheckIn.expires_at <= moment)
            .values(status="expired", email=None, first_name=None)).rowcount
        # A worker died while delivering: the attempt is recorded as such (the receiver
        # may have had it; the next one carries the same webhook-id), then retried.
        cut_short = db.execute(select(WriteBack.id, WriteBack.claimed_at, WriteBack.attempts)
                               .where(WriteBack.status == "delivering",
                                      WriteBack.claimed_at <= stale)).all()
        for write_back_id, claimed_at, attempts in cut_short:
            # Only if still that same claim: a run that finished meanwhile keeps its result.
            # The attempt counted itself when it began: at the limit, this was the last.
            last = attempts >= config["WRITE_BACK_MAX_ATTEMPTS"]
            reset = db.execute(update(WriteBack).where(
                WriteBack.id == write_back_id, WriteBack.status == "delivering",
                WriteBack.claimed_at == claimed_at)
                .values(status="failed" if last else "pending", claimed_at=None,
                        last_error=f"gave up after {attempts} attempts, the last one cut "
                        "short" if last else WriteBack.last_error)).rowcount
            if reset:
                db.add(WriteBackAttempt(write_back_id=write_back_id, at=claimed_at,
                                        outcome="interrupted",
                                        detail="the worker stopped while delivering"))
        write_backs = db.scalars(select(WriteBack.id).where(
            WriteBack.status == "pending", WriteBack.created_at <= stale,
            or_(WriteBack.next_attempt_at.is_(None), WriteBack.next_attempt_at <= stale),
        ).limit(BATCH)).all()
        unchecked = _unchecked_bookings(db, stale)
        notes = booking_notes.lost(db, moment, BATCH)
        counts["inbox_given_up"] = _give_up_old_events(db, moment)
        counts.update(_retention(db, moment))

    for start in range(0, len(inbox), 50):
        queue_ingest(list(inbox[start:start + 50]), nudge=tag)
    for check_in_id in [*scheduled, *unsent]:
        queue_send(check_in_id, None, nudge=tag)
    for check_in_id in reminders:
        queue_reminder(check_in_id, None, nudge=tag)
    for write_back_id in write_backs:
        queue_write_back(write_back_id, nudge=tag)
    for appointment_id, end_at in unchecked:
        queue_completion_check(appointment_id, end_at, nudge=tag)
    queued_notes = sum(1 for step in notes if step())

    CHECK_INS.labels("expired").inc(expired)
    CHECK_INS.labels("interrupted").inc(interrupted)
    counts.update(inbox=len(inbox), check_ins=len(scheduled), interrupted=interrupted,
                  sent_again=len(unsent),
                  reminders=len(reminders), expired=expired, write_backs=len(write_backs),
                  completions=len(unchecked), booking_notes=queued_notes)
    if any(counts.values()):
        log.info("sweep: %s", counts)
    return counts


def _unchecked_bookings(db, stale: datetime) -> list[tuple[int, datetime]]:
    """Booked visits on platforms checked at the end whose check is due and was lost, or
    is due again (``next_check_at``: the end plus the clinic's grace, then later and later
    while the platform cannot say; see ``appointments.check_completion``)."""
    platforms = names_where(checked_at_the_end)
    # Older than that, a booking still marked booked was checked and moved, or is beyond
    # a useful check-in.
    horizon = stale - CHECK_HORIZON
    return list(db.execute(select(Appointment.id, Appointment.end_at).join(Clinic).where(
        Clinic.platform.in_(platforms), Clinic.status == "active",
        Appointment.status == "booked",
        Appointment.end_at <= stale, Appointment.end_at >= horizon,
        or_(Appointment.next_check_at.is_(None), Appointment.next_check_at <= stale),
    ).limit(BATCH)).all())


def _never_handed_over(db, stale: datetime) -> list[int]:
    """Check-ins whose worker died before the mail server agreed to take the message:
    scheduled again, to be sent now; failed once ``SEND_MAX_ATTEMPTS`` began."""
    limit = current_app.config["SEND_MAX_ATTEMPTS"]
    cut_short = db.execute(select(CheckIn.id, CheckIn.send_attempts).where(
        CheckIn.status == "sending", CheckIn.claimed_at <= stale,
        CheckIn.smtp_stage == "claimed").limit(BATCH)).all()
    again = []
    for check_in_id, attempts in cut_short:
        if attempts >= limit:
            claim(db, check_in_id, "sending", "failed",
                  reason=f"gave up after {attempts} attempts to send, each cut short before "
                         "the mail server had the message")
        elif claim(db, check_in_id, "sending", "scheduled", smtp_stage=None,
                   reason="the worker stopped before the mail server had the message; "
                          "sent again"):
            again.append(check_in_id)
    return again


def _give_up_old_events(db, moment: datetime) -> int:
    """Events still not processed after the inbox's retention period (their platform out
    of reach all along, a clinic that never reconnected) are given up: their bodies, and
    the personal data in them, are not kept longer than processed events' are."""
    cutoff = moment - timedelta(days=current_app.config["INBOX_RETENTION_DAYS"])
    old = db.scalars(select(InboxEvent).where(
        InboxEvent.processed_at.is_(None), InboxEvent.received_at <= cutoff).limit(BATCH)).all()
    for row in old:
        give_up(row, f"not processed within {current_app.config['INBOX_RETENTION_DAYS']} days")
    return len(old)


def _retention(db, moment: datetime) -> dict[str, int]:
    config = current_app.config
    inbox_cutoff = moment - timedelta(days=config["INBOX_RETENTION_DAYS"])
    link_cutoff = moment - timedelta(days=config["LINK_RETENTION_DAYS"])
    return {
        "inbox_deleted": db.execute(delete(InboxEvent).where(
            InboxEvent.processed_at.is_not(None), InboxEvent.processed_at <= inbox_cutoff)
        ).rowcount,
        "links_deleted": db.execute(delete(SurveyLink).where(
            SurveyLink.created_at <= link_cutoff)).rowcount,
    }
