"""Sending check-ins: the email, its one reminder, its expiry, an admin's test, and
re-timing the ones still waiting when a clinic changes its rules.

A check-in is marked ``sending`` before the message goes to the SMTP server and ``sent``
after. In between, ``smtp_stage`` records how far the exchange got: ``claimed`` until the
server agrees to take the message, ``data`` from the moment before its first byte is
sent. A worker that dies at ``claimed`` provably never gave the server the message, so
the sweeper sends it again (up to ``SEND_MAX_ATTEMPTS`` attempts in all); one that dies
at ``data`` may have, so the check-in ends ``interrupted`` and is never sent again: a
client is never emailed twice for one visit.

Before sending, the address itself is checked too (:mod:`plugin.pipeline.addresses`):
not opted out under any profile, and under the clinic's limit per address.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update

from handlers.base import (
    CANCELLED,
    NO_SHOW,
    RECONNECT_ERRORS,
    Client,
    PermanentError,
    TransientError,
)
from plugin.clinics.platforms import credentials_for, platform_of, platform_refused
from plugin.i18n import pick_language
from plugin.pipeline import addresses, instruments, mail
from plugin.pipeline.check_ins import claim, is_opted_out, new_link, now, timing_for
from plugin.pipeline.timing import expiry_time, reminder_time, send_time
from plugin.store import database
from plugin.store.models import Appointment, CheckIn, Clinic
from plugin.tasks.queue import at_tag, enqueue
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)

# RQ's scheduler starts a job in the second its time falls in, so up to a second early.
EARLY_WAKE_SECONDS = 5


# --- the jobs, and the one helper that queues each --------------------------------------


@job
def send_check_in(check_in_id: int) -> None:
    send(check_in_id)


@job
def send_reminder(check_in_id: int) -> None:
    remind(check_in_id)


@job
def expire_check_in(check_in_id: int) -> None:
    expire(check_in_id)


def queue_send(check_in_id: int, at: datetime | None, *, again: bool = False,
               nudge: str | None = None) -> bool:
    """Queue the check-in's email for ``at``. ``again``: for a new time, under an id of
    its own (the job queued for the old one may still hold the plain id)."""
    parts = (check_in_id, at_tag(at)) if again and at else (check_in_id,)
    return enqueue(send_check_in, check_in_id, id_parts=(*parts, *filter(None, [nudge])),
                   at=at)


def queue_reminder(check_in_id: int, at: datetime | None, *, again: bool = False,
                   nudge: str | None = None) -> bool:
    parts = (check_in_id, at_tag(at)) if again and at else (check_in_id,)
    return enqueue(send_reminder, check_in_id, id_parts=(*parts, *filter(None, [nudge])),
                   at=at)


def queue_expiry(check_in_id: int, at: datetime) -> bool:
    return enqueue(expire_check_in, check_in_id, id_parts=(check_in_id,), at=at)


# --- the work --------------------------------------------------------------------------


def _due(check_in_id: int, column) -> datetime | None:
    with database.session() as db:
        return db.scalar(select(column).where(CheckIn.id == check_in_id))


def _wait_if_moments_away(due: datetime | None) -> None:
    """A job started a moment before its time waits for it here, outside any
    transaction, rather than being queued again behind itself."""
    if due is None:
        return
    ahead = (due - now()).total_seconds()
    if 0 < ahead <= EARLY_WAKE_SECONDS:
        time.sleep(ahead)


def _contact(clinic: Clinic, check_in: CheckIn) -> Client:
    if check_in.email:
        return Client(id=check_in.client_external_id, email=check_in.email,
                      first_name=check_in.first_name, locale=check_in.locale)
    return platform_of(clinic).fetch_client(credentials_for(clinic), check_in.client_external_id)


def _message(clinic: Clinic, check_in: CheckIn, contact: Client, token: str,
             reminder: bool) -> mail.CheckInEmail:
    base = current_app.config["BASE_URL"]
    sender = (clinic.settings or {}).get("sender", {})
    return mail.CheckInEmail(
        to=contact.email or "",
        first_name=contact.first_name,
        clinic_name=clinic.name,
        therapist_name=check_in.appointment.therapist_name,
        survey_url=f"{base}/s/{token}",
        unsubscribe_url=f"{base}/s/{token}/unsubscribe",
        expires_at=check_in.expires_at,
        timezone=clinic.timezone,
        language=pick_language(contact.locale, check_in.locale, clinic.language),
        reminder=reminder,
        test=check_in.test,
        sender_name=sender.get("name"),
        reply_to=sender.get("reply_to"),
    )


def send(check_in_id: int) -> None:
    """Send the check-in email, once."""
    _wait_if_moments_away(_due(check_in_id, CheckIn.send_at))
    moment = now()
    with database.session() as db:
        check_in = db.get(CheckIn, check_in_id)
        if check_in is None or check_in.status != "scheduled":
            return
        if check_in.send_at and check_in.send_at > moment:
            # Woken long before its time (the sweeper, a restart): queued again for it.
            queue_send(check_in_id, check_in.send_at, again=True)
            return
        clinic = check_in.clinic
        if clinic.status != "active":
            return  # waits, still 'scheduled', until the clinic reconnects
        if check_in.appointment.status in (CANCELLED, NO_SHOW):
            claim(db, check_in_id, "scheduled", "cancelled",
                  reason=f"the appointment was {check_in.appointment.status}")
            return
        if is_opted_out(db, clinic.id, check_in.client_external_id):
            claim(db, check_in_id, "scheduled", "skipped", reason="the client opted out")
            return
    # Reading the contact may call the platform; no transaction is held meanwhile.
    try:
        contact = _contact(clinic, check_in)
    except TransientError:
        raise  # RQ retries the job; the check-in is still 'scheduled'
    except RECONNECT_ERRORS as error:
        platform_refused(clinic.id, error)  # kept 'scheduled': it goes once reconnected
        return
    except PermanentError as error:
        with database.session() as db:
            claim(db, check_in_id, "scheduled", "failed",
                  reason=f"the client's contact details could not be read: {error}")
        return
    if not contact.email or contact.unsubscribed:
        reason = ("the client has no email address" if not contact.email
                  else "the client unsubscribed from the clinic's emails on its platform")
        with database.session() as db:
            claim(db, check_in_id, "scheduled", "skipped", reason=reason)
        return
    rules = timing_for(clinic)
    hashed = addresses.address_hash(contact.email)
    with database.session() as db:
        refusal = ("the client's address opted out"
                   if addresses.opted_out(db, clinic.id, hashed) else
                   addresses.over_limit(db, clinic.id, hashed, moment,
                                        check_in_id=check_in_id))
        if refusal:
            claim(db, check_in_id, "scheduled", "skipped", reason=refusal)
            return
        if not claim(db, check_in_id, "scheduled", "sending", claimed_at=moment,
                     expires_at=expiry_time(moment, rules=rules), address_hash=hashed,
                     smtp_stage="claimed", send_attempts=CheckIn.send_attempts + 1):
            return
        check_in = db.get(CheckIn, check_in_id)
        token = new_link(db, check_in)
        message = mail.compose(_message(clinic, check_in, contact, token, reminder=False))
    try:
        mail.send(message, on_handover=lambda: _handing_over(check_in_id))
    except mail.MailError as error:
        with database.session() as db:
            if error.uncertain:
                # As for a worker stopped while sending: never sent twice; the link works
                # if the message arrived, until it expires.
                claim(db, check_in_id, "sending", "interrupted", reason=str(error))
            elif error.temporary:
                # Said plainly by the server: not an attempt cut short.
                claim(db, check_in_id, "sending", "scheduled", reason=str(error),
                      send_attempts=CheckIn.send_attempts - 1)
            else:
                claim(db, check_in_id, "sending", "failed", reason=str(error))
        log.warning("check-in.send-failed: check-in %s: %s", check_in_id, error)
        if error.uncertain:
            queue_expiry(check_in_id, expiry_time(moment, rules=rules))
        if error.temporary:
            raise
        return
    sent_at = now()
    remind_at = reminder_time(sent_at, rules=rules, zone=clinic.timezone)
    expires_at = expiry_time(sent_at, rules=rules)
    if check_in.test:
        remind_at = expires_at  # an admin's test gets no reminder
    with database.session() as db:
        claim(db, check_in_id, "sending", "sent", sent_at=sent_at, expires_at=expires_at,
              remind_at=remind_at if remind_at < expires_at else None)
    log.info("check-in.sent: check-in %s", check_in_id)
    if remind_at < expires_at:
        queue_reminder(check_in_id, remind_at)
    queue_expiry(check_in_id, expires_at)


def _handing_over(check_in_id: int) -> None:
    """The mail server agreed to take the message: from now on it may have it. Committed
    before the first byte of the message is sent (mail._Connection)."""
    with database.session() as db:
        db.execute(update(CheckIn).where(CheckIn.id == check_in_id, CheckIn.status == "sending")
                   .values(smtp_stage="data"))


def remind(check_in_id: int) -> None:
    """The one reminder, if the client has not answered yet."""
    _wait_if_moments_away(_due(check_in_id, CheckIn.remind_at))
    moment = now()
    with database.session() as db:
        check_in = db.get(CheckIn, check_in_id)
        if (check_in is None or check_in.status != "sent" or check_in.reminded_at
                or check_in.remind_at is None or check_in.expires_at <= moment):
            return
        if check_in.remind_at > moment:
            queue_reminder(check_in_id, check_in.remind_at, again=True)
            return
        if check_in.appointment.status in (CANCELLED, NO_SHOW):
            # Marked so on the platform after the check-in went out (a no-show recorded
            # the next day): no second email about that visit, and nothing left for the
            # sweeper to try again.
            check_in.remind_at = None
            return
        if is_opted_out(db, check_in.clinic_id, check_in.client_external_id):
            check_in.remind_at = None  # dropped, so the sweeper does not ask again
            return
        clinic = check_in.clinic
        if clinic.status != "active":
            return  # the platform is not asked; the sweeper tries again once reconnected
    try:
        contact = _contact(clinic, check_in)
    except RECONNECT_ERRORS as error:
        platform_refused(clinic.id, error)
        return
    except PermanentError as error:
        log.warning("check-in.reminder-skipped: check-in %s: %s", check_in_id, error)
        _drop_reminder(check_in_id)
        return
    if not contact.email or contact.unsubscribed:
        _drop_reminder(check_in_id)
        return
    with database.session() as db:
        claimed = db.execute(update(CheckIn).where(
            CheckIn.id == check_in_id, CheckIn.status == "sent",
            CheckIn.reminded_at.is_(None)).values(reminded_at=moment)).rowcount == 1
        if not claimed:
            return
        check_in = db.get(CheckIn, check_in_id)
        token = new_link(db, check_in)
        message = mail.compose(_message(clinic, check_in, contact, token, reminder=True))
    try:
        mail.send(message)
    except mail.MailError as error:
        log.warning("check-in.reminder-failed: check-in %s: %s", check_in_id, error)
        if error.temporary:
            with database.session() as db:
                db.execute(update(CheckIn).where(CheckIn.id == check_in_id)
                           .values(reminded_at=None))
            raise


def _drop_reminder(check_in_id: int) -> None:
    """No reminder can go (the client is gone, unsubscribed or has no address): none is
    due any more, so the sweeper does not ask the platform again every minute."""
    with database.session() as db:
        db.execute(update(CheckIn).where(
            CheckIn.id == check_in_id, CheckIn.reminded_at.is_(None)).values(remind_at=None))


def expire(check_in_id: int) -> None:
    with database.session() as db:
        db.execute(update(CheckIn)
                   .where(CheckIn.id == check_in_id,
                          CheckIn.status.in_(("sent", "interrupted")),
                          CheckIn.expires_at <= now())
                   .values(status="expired", email=None, first_name=None))


def send_test(clinic_id: int, email: str) -> CheckIn:
    """A real check-in to an admin's own address, for a visit that never happened.

    Its answers are scored and the note is shown on the thank-you page; nothing is
    written back to the platform.
    """
    moment = now()
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        appointment = Appointment(
            clinic_id=clinic.id, external_id=f"test-{secrets.token_hex(6)}", status="completed",
            client_external_id=f"test:{email}", therapist_id="test", therapist_name=None,
            start_at=moment, end_at=moment, completed_at=moment)
        db.add(appointment)
        db.flush()
        check_in = CheckIn(
            clinic_id=clinic.id, appointment_id=appointment.id, test=True,
            client_external_id=appointment.client_external_id, therapist_id="test",
            status="scheduled", send_at=moment, email=email, locale=clinic.language,
            instrument_id=instruments.policy(clinic)["early"])
        db.add(check_in)
        db.flush()
        check_in_id = check_in.id
    try:
        send(check_in_id)
    except mail.MailError as error:
        # A client's check-in would wait for a retry; the admin is told now, and a test
        # is not sent later, after they have fixed the settings and sent another.
        with database.session() as db:
            claim(db, check_in_id, "scheduled", "failed", reason=str(error))
    with database.session() as db:
        return db.get(CheckIn, check_in_id)


def replan_pending(clinic_id: int) -> int:
    """Give the clinic's check-ins still waiting to be sent the send time its current
    rules give (an admin changed the delay, the window or the time zone); how many moved.

    Each moved one is queued for its new time under a job id naming that time; the job
    queued for the old time stays, and does nothing when it fires: :func:`send` finds the
    check-in sent already, or not due yet and queued for its new time.
    """
    moment = now()
    moved: list[tuple[int, datetime]] = []
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        rules = timing_for(clinic)
        waiting = db.scalars(select(CheckIn).where(
            CheckIn.clinic_id == clinic_id, CheckIn.status == "scheduled")).all()
        for check_in in waiting:
            end = check_in.appointment.end_at or check_in.created_at
            send_at = send_time(end, now=moment, rules=rules, zone=clinic.timezone)
            if send_at == check_in.send_at:
                continue
            # Only while still waiting: a worker may have claimed it meanwhile.
            if db.execute(update(CheckIn).where(
                    CheckIn.id == check_in.id, CheckIn.status == "scheduled")
                    .values(send_at=send_at)).rowcount == 1:
                moved.append((check_in.id, send_at))
    for check_in_id, send_at in moved:
        queue_send(check_in_id, send_at, again=True)
    if moved:
        log.info("check-in.replanned: clinic %s: %s check-in(s)", clinic_id, len(moved))
    return len(moved)
