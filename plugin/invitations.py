"""From a completed visit to a check-in email: planning, sending, reminding, expiring.

Each step is claimed with a conditional UPDATE on the invitation's status, so a step
that runs twice (a duplicate job, a retry, the sweeper) finds nothing left to do. The
invitation is marked ``sending`` before the message goes to the SMTP server and
``sent`` after: a worker that dies in between leaves it ``interrupted`` (see the
sweeper), never re-sent, so a client is never emailed twice for one visit.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import exists, func, select, text, update
from sqlalchemy.orm import Session

import handlers
from handlers.base import (
    CANCELLED,
    NO_SHOW,
    RECONNECT_ERRORS,
    Client,
    PermanentError,
    TransientError,
)
from plugin import accounts, clinics, crypto, instruments, mail, storage
from plugin.followup import FollowUpRules, eligibility, expiry_time, reminder_time, send_time
from plugin.i18n import pick_language
from plugin.models import Appointment, Clinic, Invitation, OptOut, SurveyLink
from plugin.queue import enqueue

log = logging.getLogger(__name__)

OPEN_STATUSES = ("scheduled", "sending", "sent")
# RQ's scheduler starts a job in the second its time falls in, so up to a second early.
EARLY_WAKE_SECONDS = 5


def now() -> datetime:
    return datetime.now(timezone.utc)


def rules_for(clinic: Clinic) -> FollowUpRules:
    return FollowUpRules.from_settings((clinic.settings or {}).get("follow_up"))


def is_opted_out(db: Session, clinic_id: int, client_id: str) -> bool:
    return bool(db.scalar(select(exists().where(
        OptOut.clinic_id == clinic_id, OptOut.client_external_id == client_id))))


def plan(db: Session, appointment: Appointment, client: Client) -> Invitation | None:
    """Decide whether this completed visit gets a check-in, and when; idempotent."""
    if db.scalar(select(Invitation.id).where(Invitation.appointment_id == appointment.id)):
        return None
    clinic = appointment.clinic
    rules = rules_for(clinic)
    _one_plan_per_client_at_a_time(db, clinic.id, client.id)
    moment = now()
    open_invitation = db.scalar(select(exists().where(
        Invitation.clinic_id == clinic.id,
        Invitation.client_external_id == client.id,
        Invitation.status.in_(OPEN_STATUSES))))
    last_answered = db.scalar(select(func.max(Invitation.answered_at)).where(
        Invitation.clinic_id == clinic.id, Invitation.client_external_id == client.id))
    verdict = eligibility(
        opted_out=is_opted_out(db, clinic.id, client.id),
        has_open_invitation=bool(open_invitation),
        last_answered_at=last_answered, now=moment, rules=rules)
    invitation = Invitation(
        clinic_id=clinic.id,
        appointment_id=appointment.id,
        client_external_id=client.id,
        therapist_id=appointment.therapist_id,
    )
    if not verdict.eligible:
        invitation.status = "skipped"
        invitation.reason = verdict.reason
        db.add(invitation)
        log.info("follow-up.skipped: appointment %s: %s", appointment.external_id, verdict.reason)
        return None
    invitation.status = "scheduled"
    invitation.send_at = send_time(appointment.end_at or moment, now=moment, rules=rules,
                                   zone=clinic.timezone)
    invitation.instrument_id = instruments.choose(db, clinic, appointment)
    invitation.email = client.email
    invitation.first_name = client.first_name
    invitation.locale = client.locale
    db.add(invitation)
    db.flush()
    return invitation


def _one_plan_per_client_at_a_time(db: Session, clinic_id: int, client_id: str) -> None:
    """Two visits of one client planned at once (two workers) must not both find no
    check-in open. SQLite's writers already take turns; on PostgreSQL a lock for this
    client, held until the plan is committed, makes the second wait and then see it."""
    if db.bind.dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:clinic, hashtext(:client))"),
                   {"clinic": clinic_id, "client": client_id})


def schedule_send(invitation: Invitation) -> None:
    enqueue("plugin.jobs.send_invitation", invitation.id,
            job_id=f"send-{invitation.id}", at=invitation.send_at)


def _due(invitation_id: int, column) -> datetime | None:
    with storage.session() as db:
        return db.scalar(select(column).where(Invitation.id == invitation_id))


def _wait_if_moments_away(due: datetime | None) -> None:
    """A job started a moment before its time waits for it here, outside any
    transaction, rather than being queued again behind itself."""
    if due is None:
        return
    ahead = (due - now()).total_seconds()
    if 0 < ahead <= EARLY_WAKE_SECONDS:
        time.sleep(ahead)


def _again_at(job: str, prefix: str, invitation_id: int, due: datetime) -> None:
    """Woken long before its time (the sweeper, a restart): queued again for it, under an
    id of its own, since the job running now still holds the plain one."""
    enqueue(f"plugin.jobs.{job}", invitation_id,
            job_id=f"{prefix}-{invitation_id}-at-{int(due.timestamp())}", at=due)


def cancel_pending(db: Session, appointment: Appointment, reason: str) -> None:
    db.execute(update(Invitation)
               .where(Invitation.appointment_id == appointment.id,
                      Invitation.status == "scheduled")
               .values(status="cancelled", reason=reason, email=None, first_name=None))


CLOSED_STATUSES = ("cancelled", "skipped", "failed", "expired")
"""A check-in that will never be sent again: the client's address and name go with it."""


def _claim(db: Session, invitation_id: int, from_status: str, to_status: str, **values) -> bool:
    if to_status in CLOSED_STATUSES:
        values = {"email": None, "first_name": None, **values}
    result = db.execute(update(Invitation)
                        .where(Invitation.id == invitation_id, Invitation.status == from_status)
                        .values(status=to_status, **values))
    return result.rowcount == 1


def new_link(db: Session, invitation: Invitation) -> str:
    """A fresh random token for this invitation; only its hash is stored."""
    token = secrets.token_urlsafe(24)  # 192 bits
    db.add(SurveyLink(invitation_id=invitation.id, token_hash=crypto.token_digest(token)))
    return token


def _contact(clinic: Clinic, invitation: Invitation) -> Client:
    if invitation.email:
        return Client(id=invitation.client_external_id, email=invitation.email,
                      first_name=invitation.first_name, locale=invitation.locale)
    adapter = handlers.adapter(clinic.platform)
    return adapter.fetch_client(accounts.credentials_for(clinic), invitation.client_external_id)


def _check_in(clinic: Clinic, invitation: Invitation, contact: Client, token: str,
              reminder: bool) -> mail.CheckIn:
    base = current_app.config["BASE_URL"]
    return mail.CheckIn(
        to=contact.email or "",
        first_name=contact.first_name,
        clinic_name=clinic.name,
        therapist_name=invitation.appointment.therapist_name,
        survey_url=f"{base}/s/{token}",
        unsubscribe_url=f"{base}/s/{token}/unsubscribe",
        expires_at=invitation.expires_at,
        timezone=clinic.timezone,
        language=pick_language(contact.locale, invitation.locale, clinic.language),
        reminder=reminder,
    )


def send(invitation_id: int) -> None:
    """Send the check-in email for one invitation, once."""
    _wait_if_moments_away(_due(invitation_id, Invitation.send_at))
    moment = now()
    with storage.session() as db:
        invitation = db.get(Invitation, invitation_id)
        if invitation is None or invitation.status != "scheduled":
            return
        if invitation.send_at and invitation.send_at > moment:
            _again_at("send_invitation", "send", invitation_id, invitation.send_at)
            return
        clinic = invitation.clinic
        if clinic.status != "active":
            return  # waits, still 'scheduled', until the clinic reconnects
        if invitation.appointment.status in (CANCELLED, NO_SHOW):
            _claim(db, invitation_id, "scheduled", "cancelled",
                   reason=f"the appointment was {invitation.appointment.status}")
            return
        if is_opted_out(db, clinic.id, invitation.client_external_id):
            _claim(db, invitation_id, "scheduled", "skipped", reason="the client opted out")
            return
    # Reading the contact may call the platform; no transaction is held meanwhile.
    try:
        contact = _contact(clinic, invitation)
    except TransientError:
        raise  # RQ retries the job; the invitation is still 'scheduled'
    except RECONNECT_ERRORS as error:
        # Kept 'scheduled': it goes out once the clinic reconnects.
        clinics.platform_refused(clinic.id, error)
        return
    except PermanentError as error:
        with storage.session() as db:
            _claim(db, invitation_id, "scheduled", "failed",
                   reason=f"the client's contact details could not be read: {error}")
        return
    if not contact.email or contact.unsubscribed:
        reason = ("the client has no email address" if not contact.email
                  else "the client unsubscribed from the clinic's emails on its platform")
        with storage.session() as db:
            _claim(db, invitation_id, "scheduled", "skipped", reason=reason)
        return
    rules = rules_for(clinic)
    with storage.session() as db:
        if not _claim(db, invitation_id, "scheduled", "sending", claimed_at=moment,
                      expires_at=expiry_time(moment, rules=rules)):
            return
        invitation = db.get(Invitation, invitation_id)
        token = new_link(db, invitation)
        message = mail.compose(_check_in(clinic, invitation, contact, token, reminder=False))
    try:
        mail.send(message)
    except mail.MailError as error:
        with storage.session() as db:
            if error.uncertain:
                # As for a worker stopped while sending: never sent twice; the link works
                # if the message arrived, until it expires.
                _claim(db, invitation_id, "sending", "interrupted", reason=str(error))
            elif error.temporary:
                _claim(db, invitation_id, "sending", "scheduled", reason=str(error))
            else:
                _claim(db, invitation_id, "sending", "failed", reason=str(error))
        log.warning("follow-up.send-failed: invitation %s: %s", invitation_id, error)
        if error.uncertain:
            enqueue("plugin.jobs.expire_invitation", invitation_id,
                    job_id=f"expire-{invitation_id}", at=expiry_time(moment, rules=rules))
        if error.temporary:
            raise
        return
    sent_at = now()
    remind_at = reminder_time(sent_at, rules=rules, zone=clinic.timezone)
    expires_at = expiry_time(sent_at, rules=rules)
    if invitation.test:
        remind_at = expires_at  # an admin's test gets no reminder
    with storage.session() as db:
        _claim(db, invitation_id, "sending", "sent", sent_at=sent_at, expires_at=expires_at,
               remind_at=remind_at if remind_at < expires_at else None)
    log.info("follow-up.sent: invitation %s", invitation_id)
    if remind_at < expires_at:
        enqueue("plugin.jobs.send_reminder", invitation_id, job_id=f"remind-{invitation_id}",
                at=remind_at)
    enqueue("plugin.jobs.expire_invitation", invitation_id, job_id=f"expire-{invitation_id}",
            at=expires_at)


def remind(invitation_id: int) -> None:
    """The one reminder, if the client has not answered yet."""
    _wait_if_moments_away(_due(invitation_id, Invitation.remind_at))
    moment = now()
    with storage.session() as db:
        invitation = db.get(Invitation, invitation_id)
        if (invitation is None or invitation.status != "sent" or invitation.reminded_at
                or invitation.remind_at is None or invitation.expires_at <= moment):
            return
        if invitation.remind_at > moment:
            _again_at("send_reminder", "remind", invitation_id, invitation.remind_at)
            return
        if invitation.appointment.status in (CANCELLED, NO_SHOW):
            # Marked so on the platform after the check-in went out (Square: the seller
            # records a no-show the next day): no second email about that visit, and
            # nothing left for the sweeper to try again.
            invitation.remind_at = None
            return
        if is_opted_out(db, invitation.clinic_id, invitation.client_external_id):
            # Dropped, like a cancelled visit's, so the sweeper does not ask again.
            invitation.remind_at = None
            return
        clinic = invitation.clinic
        if clinic.status != "active":
            return  # the platform is not asked; the sweeper tries again once reconnected
    try:
        contact = _contact(clinic, invitation)
    except RECONNECT_ERRORS as error:
        clinics.platform_refused(clinic.id, error)
        return
    except PermanentError as error:
        log.warning("follow-up.reminder-skipped: invitation %s: %s", invitation_id, error)
        _drop_reminder(invitation_id)
        return
    if not contact.email or contact.unsubscribed:
        _drop_reminder(invitation_id)
        return
    with storage.session() as db:
        claimed = db.execute(update(Invitation).where(
            Invitation.id == invitation_id, Invitation.status == "sent",
            Invitation.reminded_at.is_(None)).values(reminded_at=moment)).rowcount == 1
        if not claimed:
            return
        invitation = db.get(Invitation, invitation_id)
        token = new_link(db, invitation)
        message = mail.compose(_check_in(clinic, invitation, contact, token, reminder=True))
    try:
        mail.send(message)
    except mail.MailError as error:
        log.warning("follow-up.reminder-failed: invitation %s: %s", invitation_id, error)
        if error.temporary:
            with storage.session() as db:
                db.execute(update(Invitation).where(Invitation.id == invitation_id)
                           .values(reminded_at=None))
            raise


def _drop_reminder(invitation_id: int) -> None:
    """No reminder can go (the client is gone, unsubscribed or has no address): none is
    due any more, so the sweeper does not ask the platform again every minute."""
    with storage.session() as db:
        db.execute(update(Invitation).where(
            Invitation.id == invitation_id, Invitation.reminded_at.is_(None))
            .values(remind_at=None))


def send_test(clinic_id: int, email: str) -> Invitation:
    """A real check-in to an admin's own address, for a visit that never happened.

    Its answers are scored and the note is shown on the thank-you page; nothing is
    written back to the platform.
    """
    moment = now()
    with storage.session() as db:
        clinic = db.get(Clinic, clinic_id)
        appointment = Appointment(
            clinic_id=clinic.id, external_id=f"test-{secrets.token_hex(6)}", status="completed",
            client_external_id=f"test:{email}", therapist_id="test", therapist_name=None,
            start_at=moment, end_at=moment, completed_at=moment)
        db.add(appointment)
        db.flush()
        invitation = Invitation(
            clinic_id=clinic.id, appointment_id=appointment.id, test=True,
            client_external_id=appointment.client_external_id, therapist_id="test",
            status="scheduled", send_at=moment, email=email, locale=clinic.language,
            instrument_id=instruments.policy(clinic)["early"])
        db.add(invitation)
        db.flush()
        invitation_id = invitation.id
    try:
        send(invitation_id)
    except mail.MailError as error:
        # A client's check-in would wait for a retry; the admin is told now, and a test
        # is not sent later, after they have fixed the settings and sent another.
        with storage.session() as db:
            _claim(db, invitation_id, "scheduled", "failed", reason=str(error))
    with storage.session() as db:
        return db.get(Invitation, invitation_id)


def expire(invitation_id: int) -> None:
    moment = now()
    with storage.session() as db:
        db.execute(update(Invitation)
                   .where(Invitation.id == invitation_id,
                          Invitation.status.in_(("sent", "interrupted")),
                          Invitation.expires_at <= moment)
                   .values(status="expired", email=None, first_name=None))


def replan_pending(clinic_id: int) -> int:
    """Give the clinic's check-ins still waiting to be sent the send time its current
    rules give (an admin changed the delay, the window or the time zone); how many moved.

    Each moved one is queued for its new time under a job id naming that time; the job
    queued for the old time stays, and does nothing when it fires: :func:`send` finds the
    invitation sent already, or not due yet and queued for its new time.
    """
    moment = now()
    moved: list[tuple[int, datetime]] = []
    with storage.session() as db:
        clinic = db.get(Clinic, clinic_id)
        rules = rules_for(clinic)
        waiting = db.scalars(select(Invitation).where(
            Invitation.clinic_id == clinic_id, Invitation.status == "scheduled")).all()
        for invitation in waiting:
            end = invitation.appointment.end_at or invitation.created_at
            send_at = send_time(end, now=moment, rules=rules, zone=clinic.timezone)
            if send_at == invitation.send_at:
                continue
            # Only while still waiting: a worker may have claimed it meanwhile.
            if db.execute(update(Invitation).where(
                    Invitation.id == invitation.id, Invitation.status == "scheduled")
                    .values(send_at=send_at)).rowcount == 1:
                moved.append((invitation.id, send_at))
    for invitation_id, send_at in moved:
        enqueue("plugin.jobs.send_invitation", invitation_id,
                job_id=f"send-{invitation_id}-at{int(send_at.timestamp())}", at=send_at)
    if moved:
        log.info("follow-up.replanned: clinic %s: %s check-in(s)", clinic_id, len(moved))
    return len(moved)
