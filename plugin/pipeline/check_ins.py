"""Check-ins as records: whether a completed visit gets one, and each step's claim.

A check-in moves ``scheduled`` → ``sending`` → ``sent`` → ``answered`` (or ``expired``),
or ends ``skipped``, ``cancelled``, ``failed`` or ``interrupted``. Each step is claimed
with a conditional UPDATE on its status (:func:`claim`), so a step that runs twice (a
duplicate job, a retry, the sweeper) finds nothing left to do. Sending itself is
:mod:`plugin.pipeline.sending`.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timezone

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.orm import Session

from handlers.base import Client
from plugin.pipeline import addresses, instruments
from plugin.pipeline.timing import Timing, eligibility, send_time
from plugin.store import sealing
from plugin.store.models import Appointment, CheckIn, Clinic, OptOut, SurveyLink

log = logging.getLogger(__name__)

OPEN_STATUSES = ("scheduled", "sending", "sent")
CLOSED_STATUSES = ("cancelled", "skipped", "failed", "expired")
"""A check-in that will never be sent again: the client's address and name go with it."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def timing_for(clinic: Clinic) -> Timing:
    return Timing.from_settings((clinic.settings or {}).get("timing"))


def is_opted_out(db: Session, clinic_id: int, client_id: str) -> bool:
    return bool(db.scalar(select(exists().where(
        OptOut.clinic_id == clinic_id, OptOut.client_external_id == client_id))))


def plan(db: Session, appointment: Appointment, client: Client) -> CheckIn | None:
    """Decide whether this completed visit gets a check-in, and when; idempotent. The
    check-in to send, or None (none, or one decided already)."""
    if db.scalar(select(CheckIn.id).where(CheckIn.appointment_id == appointment.id)):
        return None
    clinic = appointment.clinic
    rules = timing_for(clinic)
    _one_plan_per_client_at_a_time(db, clinic.id, client.id)
    moment = now()
    # What the rules ask about this client, in one statement: this runs for every
    # completed visit, inside the transaction that plans it.
    still_open, last_answered, opted_out = db.execute(select(
        exists().where(CheckIn.clinic_id == clinic.id,
                       CheckIn.client_external_id == client.id,
                       CheckIn.status.in_(OPEN_STATUSES)),
        select(func.max(CheckIn.answered_at)).where(
            CheckIn.clinic_id == clinic.id,
            CheckIn.client_external_id == client.id).scalar_subquery(),
        exists().where(OptOut.clinic_id == clinic.id, OptOut.client_external_id == client.id),
    )).one()
    hashed = addresses.address_hash(client.email)
    verdict = eligibility(
        opted_out=bool(opted_out) or addresses.opted_out(db, clinic.id, hashed),
        has_open_check_in=bool(still_open),
        last_answered_at=last_answered, now=moment, rules=rules)
    check_in = CheckIn(
        clinic_id=clinic.id,
        appointment_id=appointment.id,
        client_external_id=client.id,
        therapist_id=appointment.therapist_id,
        address_hash=hashed,
    )
    too_many = verdict.eligible and addresses.over_limit(db, clinic.id, hashed, moment)
    if not verdict.eligible or too_many:
        check_in.status = "skipped"
        check_in.reason = verdict.reason if not verdict.eligible else too_many
        db.add(check_in)
        log.info("check-in.skipped: appointment %s: %s", appointment.external_id,
                 check_in.reason)
        return None
    check_in.status = "scheduled"
    check_in.send_at = send_time(appointment.end_at or moment, now=moment, rules=rules,
                                 zone=clinic.timezone)
    check_in.instrument_id = instruments.choose(db, clinic, appointment)
    check_in.email = client.email
    check_in.first_name = client.first_name
    check_in.locale = client.locale
    db.add(check_in)
    db.flush()
    return check_in


def _one_plan_per_client_at_a_time(db: Session, clinic_id: int, client_id: str) -> None:
    """Two visits of one client planned at once (two workers) must not both find no
    check-in open. SQLite's writers already take turns; on PostgreSQL a lock for this
    client, held until the plan is committed, makes the second wait and then see it."""
    if db.bind.dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:clinic, hashtext(:client))"),
                   {"clinic": clinic_id, "client": client_id})


def cancel_pending(db: Session, appointment: Appointment, reason: str) -> None:
    db.execute(update(CheckIn)
               .where(CheckIn.appointment_id == appointment.id,
                      CheckIn.status == "scheduled")
               .values(status="cancelled", reason=reason, email=None, first_name=None))


def claim(db: Session, check_in_id: int, from_status: str, to_status: str, **values) -> bool:
    """Move the check-in from one status to the next, if it is still in the first."""
    if to_status in CLOSED_STATUSES:
        values = {"email": None, "first_name": None, **values}
    result = db.execute(update(CheckIn)
                        .where(CheckIn.id == check_in_id, CheckIn.status == from_status)
                        .values(status=to_status, **values))
    return result.rowcount == 1


def link_token() -> str:
    """A fresh random token for a check-in's link (192 bits)."""
    return secrets.token_urlsafe(24)


def add_link(db: Session, check_in_id: int, token: str) -> None:
    """Make ``token`` open the check-in; only its hash is stored."""
    db.add(SurveyLink(check_in_id=check_in_id, token_hash=sealing.token_digest(token)))
