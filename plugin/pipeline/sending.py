"""Sending check-ins: the email, its one reminder, its expiry, an admin's test, and
re-timing the ones still waiting when a clinic changes its rules.

A check-in is marked ``sending`` before the message goes to the SMTP server and ``sent``
after, and how far the SMTP exchange got is recorded (``smtp_stage``: ``data`` once the
server agreed to take the message): a worker that dies before that leaves a check-in the
sweeper sends again, one that dies after leaves it ``interrupted``, never re-sent, so a
client is never emailed twice for one visit (nor by a worker only held up that long).
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

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
from plugin.metrics import CHECK_INS
from plugin.pipeline import addresses, instruments, mail, told_before
from plugin.pipeline.check_ins import add_link, claim, is_opted_out, link_token, now, timing_for
from plugin.pipeline.timing import expiry_time, reminder_time, send_time
from plugin.store import database
from plugin.store.models import Appointment, CheckIn, Clinic
from plugin.tasks.queue import at_tag, enqueue
from plugin.tasks.runtime import job, sends

log = logging.getLogger(__name__)

# RQ's scheduler starts a job in the second its time falls in, so up to a second early.
EARLY_WAKE_SECONDS = 5


# --- the jobs, and the one helper that queues each --------------------------------------


@sends
@job
def send_check_in(check_in_id: int, after_inbox: int | None = None) -> None:
    send(check_in_id, after_inbox)


@sends
@job
def send_reminder(check_in_id: int) -> None:
    remind(check_in_id)


@sends
@job
def expire_check_in(check_in_id: int) -> None:
    expire(check_in_id)


def queue_send(check_in_id: int, at: datetime | None, *, again: bool = False,
               nudge: str | None = None, after_inbox: int | None = None) -> bool:
    """Queue the check-in's email for ``at``. ``again``: for a new time, under an id of
    its own (the job queued for the old one may still hold the plain id)."""
    parts = (check_in_id, at_tag(at)) if again and at else (check_in_id,)
    args = (check_in_id,) if after_inbox is None else (check_in_id, after_inbox)
    return enqueue(send_check_in, *args, id_parts=(*parts, *filter(None, [nudge])), at=at)


def queue_reminder(check_in_id: int, at: datetime | None, *, again: bool = False,
                   nudge: str | None = None) -> bool:
    parts = (check_in_id, at_tag(at)) if again and at else (check_in_id,)
    return enqueue(send_reminder, check_in_id, id_parts=(*parts, *filter(None, [nudge])),
                   at=at)


def queue_expiry(check_in_id: int, at: datetime) -> bool:
    return enqueue(expire_check_in, check_in_id, id_parts=(check_in_id,), at=at)


# --- the work --------------------------------------------------------------------------


def _load(check_in_id: int) -> tuple[CheckIn | None, bool]:
    """The check-in with its clinic and visit, and whether the client opted out: one
    read, no lock taken."""
    with database.reading() as db:
        check_in = db.get(CheckIn, check_in_id,
                          options=[joinedload(CheckIn.clinic), joinedload(CheckIn.appointment)])
        if check_in is None:
            return None, False
        return check_in, is_opted_out(db, check_in.clinic_id, check_in.client_external_id)


def _load_when_due(check_in_id: int, column: str) -> tuple[CheckIn | None, bool]:
    """:func:`_load`; a job started a moment before its time waits for it first, outside
    any transaction, rather than being queued again behind itself."""
    check_in, opted_out = _load(check_in_id)
    due = getattr(check_in, column) if check_in is not None else None
    ahead = (due - now()).total_seconds() if due is not None else 0
    if 0 < ahead <= EARLY_WAKE_SECONDS:
        time.sleep(ahead)
        check_in, opted_out = _load(check_in_id)
    return check_in, opted_out


def _contact(clinic: Clinic, check_in: CheckIn) -> Client:
    if check_in.email:
        return Client(id=check_in.client_external_id, email=check_in.email,
                      first_name=check_in.first_name, locale=check_in.locale)
    return platform_of(clinic).fetch_client(credentials_for(clinic), check_in.client_external_id)


def _message(clinic: Clinic, check_in: CheckIn, contact: Client, token: str,
             expires_at: datetime, reminder: bool) -> EmailMessage:
    base = current_app.config["BASE_URL"]
    sender = (clinic.settings or {}).get("sender", {})
    return mail.compose(mail.CheckInEmail(
        to=contact.email or "",
        first_name=contact.first_name,
        clinic_name=clinic.name,
        therapist_name=check_in.appointment.therapist_name,
        survey_url=f"{base}/s/{token}",
        unsubscribe_url=f"{base}/s/{token}/unsubscribe",
        expires_at=expires_at,
        timezone=clinic.timezone,
        language=pick_language(contact.locale, check_in.locale, clinic.language),
        reminder=reminder,
        test=check_in.test,
        sender_name=sender.get("name"),
        reply_to=sender.get("reply_to"),
    ))


def _closed_as(check_in_id: int, status: str, reason: str) -> None:
    with database.session() as db:
        claim(db, check_in_id, "scheduled", status, reason=reason)


def send(check_in_id: int, after_inbox: int | None = None) -> None:
    """Send the check-in email, once; not while events told before ``after_inbox``, the
    inbox event that completed the visit, still wait (pipeline/told_before.py).

    The message, with its new link, is built before the check-in is claimed and outside
    any transaction: the claim and the link are one short write, so no worker holds the
    database while another's email is composed or sent. A claim that fails (another run
    got there first, the visit was cancelled, the client opted out meanwhile) throws the
    message away unsent.
    """
    check_in, opted_out = _load_when_due(check_in_id, "send_at")
    moment = now()
    if check_in is None or check_in.status != "scheduled":
        return
    if check_in.send_at and check_in.send_at > moment:
        # Woken long before its time (the sweeper, a restart): queued again for it.
        queue_send(check_in_id, check_in.send_at, again=True, after_inbox=after_inbox)
        return
    if told_before.still_waiting(check_in, after_inbox, moment):
        queue_send(check_in_id, moment + told_before.LOOK_AGAIN, again=True,
                   after_inbox=after_inbox)
        return
    clinic = check_in.clinic
    if clinic.status != "active":
        return  # waits, still 'scheduled', until the clinic reconnects
    if check_in.appointment.status in (CANCELLED, NO_SHOW):
        _closed_as(check_in_id, "cancelled",
                   f"the appointment was {check_in.appointment.status}")
        return
    if opted_out:
        _closed_as(check_in_id, "skipped", "the client opted out")
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
        _closed_as(check_in_id, "failed",
                   f"the client's contact details could not be read: {error}")
        return
    if not contact.email or contact.unsubscribed:
        _closed_as(check_in_id, "skipped", "the client has no email address" if not contact.email
                   else "the client unsubscribed from the clinic's emails on its platform")
        return
    rules = timing_for(clinic)
    hashed = addresses.address_hash(contact.email)
    token, closes_at = link_token(), expiry_time(moment, rules=rules)
    message = _message(clinic, check_in, contact, token, closes_at, reminder=False)
    with database.session() as db:
        refusal = ("the client's address opted out"
                   if addresses.opted_out(db, clinic.id, hashed) else
                   addresses.over_limit(db, clinic.id, hashed, moment,
                                        check_in_id=check_in_id))
        if refusal:
            claim(db, check_in_id, "scheduled", "skipped", reason=refusal)
            return
        if not claim(db, check_in_id, "scheduled", "sending", claimed_at=moment,
                     expires_at=closes_at, address_hash=hashed, smtp_stage="claimed",
                     send_attempts=CheckIn.send_attempts + 1):
            return
        add_link(db, check_in_id, token)
    try:
        mail.send(message, on_handover=lambda: _handing_over(check_in_id, moment))
    except mail.HandoverRefused as refused:
        log.warning("check-in.send-abandoned: check-in %s: %s", check_in_id, refused)
        return
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
        if not error.temporary:
            CHECK_INS.labels("interrupted" if error.uncertain else "failed").inc()
        if error.uncertain:
            queue_expiry(check_in_id, closes_at)
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
    CHECK_INS.labels("sent").inc()
    if remind_at < expires_at:
        queue_reminder(check_in_id, remind_at)
    queue_expiry(check_in_id, expires_at)


def _handing_over(check_in_id: int, claimed_at: datetime) -> None:
    """The message is sent but its last line: from now on the server may have it. Only
    while the claim is still this one: a worker held up until the sweeper gave the
    check-in to another (the database locked) must not complete its message."""
    with database.session() as db:
        if db.execute(update(CheckIn).where(
                CheckIn.id == check_in_id, CheckIn.status == "sending",
                CheckIn.smtp_stage == "claimed", CheckIn.claimed_at == claimed_at)
                .values(smtp_stage="data")).rowcount != 1:
            raise mail.HandoverRefused("taken back by the sweeper while this worker was held up")


def remind(check_in_id: int) -> None:
    """The one reminder, if the client has not answered yet; built, like the check-in,
    before it is claimed."""
    check_in, opted_out = _load_when_due(check_in_id, "remind_at")
    moment = now()
    if (check_in is None or check_in.status != "sent" or check_in.reminded_at
            or check_in.remind_at is None or check_in.expires_at <= moment):
        return
    if check_in.remind_at > moment:
        queue_reminder(check_in_id, check_in.remind_at, again=True)
        return
    if check_in.appointment.status in (CANCELLED, NO_SHOW) or opted_out:
        # Marked so on the platform after the check-in went out (a no-show recorded the
        # next day), or the client opted out: no second email, and nothing left for the
        # sweeper to try again.
        _drop_reminder(check_in_id)
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
    token = link_token()
    message = _message(clinic, check_in, contact, token, check_in.expires_at, reminder=True)
    with database.session() as db:
        claimed = db.execute(update(CheckIn).where(
            CheckIn.id == check_in_id, CheckIn.status == "sent",
            CheckIn.reminded_at.is_(None)).values(reminded_at=moment)).rowcount == 1
        if not claimed:
            return
        add_link(db, check_in_id, token)
    try:
        mail.send(message)
    except mail.MailError as error:
        log.warning("check-in.reminder-failed: check-in %s: %s", check_in_id, error)
        if error.temporary:
            with database.session() as db:
                db.execute(update(CheckIn).where(CheckIn.id == check_in_id)
                           .values(reminded_at=None))
            raise
        return
    CHECK_INS.labels("reminded").inc()


def _drop_reminder(check_in_id: int) -> None:
    """No reminder can go (the client is gone, unsubscribed or has no address): none is
    due any more, so the sweeper does not ask the platform again every minute."""
    with database.session() as db:
        db.execute(update(CheckIn).where(
            CheckIn.id == check_in_id, CheckIn.reminded_at.is_(None)).values(remind_at=None))


def expire(check_in_id: int) -> None:
    with database.session() as db:
        expired = db.execute(update(CheckIn)
                   .where(CheckIn.id == check_in_id,
                          CheckIn.status.in_(("sent", "interrupted")),
                          CheckIn.expires_at <= now())
                   .values(status="expired", email=None, first_name=None)).rowcount
    CHECK_INS.labels("expired").inc(expired)


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
