"""Delivering a response's scores, talking points and note back to the platform.

Every attempt sends the note assessed when the answers arrived
(:mod:`plugin.pipeline.assessment`). Transient failures (429, 5xx, timeouts) are retried
with backoff, honouring ``Retry-After``; other 4xx fail at once; a refused credential
pauses the clinic's write-backs until it reconnects. Every attempt is recorded in
``write_back_attempts``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

from flask import current_app
from rq import Retry
from sqlalchemy import select, update

from handlers.base import (
    RECONNECT_ERRORS,
    ConflictError,
    PermanentError,
    TransientError,
    WriteBackTarget,
)
from plugin.clinics import callbacks, records
from plugin.clinics.platforms import credentials_for, platform_of, refusal_detail
from plugin.metrics import WRITE_BACKS
from plugin.pipeline import booking_notes
from plugin.pipeline.assessment import assessment_for, note_of
from plugin.store import database
from plugin.store.identity import installation_id
from plugin.store.models import Appointment, Clinic, WriteBack, WriteBackAttempt
from plugin.tasks.queue import backoff_seconds, enqueue
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)


@job
def deliver_write_back(write_back_id: int):
    return deliver(write_back_id)


def queue_write_back(write_back_id: int, *, nudge: str | None = None) -> bool:
    return enqueue(deliver_write_back, write_back_id,
                   id_parts=(write_back_id, *filter(None, [nudge])))


def delivery_id(write_back_id: int) -> str:
    """The same on every attempt of one write-back, so a receiver can drop a retry it
    already has; and distinct between installations, so a receiver never drops a new
    installation's first write-back as the repeat of an earlier one's."""
    return f"rapport-wb-{installation_id()}-{write_back_id}"


def deliver(write_back_id: int):
    max_attempts = current_app.config["WRITE_BACK_MAX_ATTEMPTS"]
    with database.session() as db:
        # Locked, so a second run at the same moment (a retry and the sweeper's nudge on
        # two workers) waits, then finds it claimed and posts nothing.
        row = db.get(WriteBack, write_back_id, with_for_update=True)
        if row is None or row.status != "pending":
            return None
        response = row.response
        clinic = response.clinic
        if clinic.status != "active":
            row.status = "paused"
            return None
        if row.attempts >= max_attempts:
            # Every attempt so far was cut short (a worker killed, the job's timeout)
            # before it could count itself: give up here rather than start one more.
            row.status, row.claimed_at = "failed", None
            row.last_error = (f"gave up after {row.attempts} attempts, the last one cut "
                              "short before it finished")
            return None
        result = assessment_for(db, response)
        appointment: Appointment = response.check_in.appointment
        target = WriteBackTarget(client_id=response.client_external_id,
                                 appointment_id=appointment.external_id,
                                 therapist_id=response.therapist_id)
        row.attempts += 1
        row.status, row.claimed_at = "delivering", datetime.now(timezone.utc)
        attempt, submitted_at = row.attempts, response.submitted_at
    started, started_at = time.monotonic(), datetime.now(timezone.utc)
    outcome, detail, retry_in = "delivered", "", None
    try:
        platform = platform_of(clinic)
        written = platform.write_back(
            callbacks.for_delivery(platform, credentials_for(clinic)), target,
            note_of(result), delivery_id=delivery_id(write_back_id), occurred_at=submitted_at)
        detail = f"{written.target}: {dict(written.detail)}"
    except (TransientError, ConflictError) as error:
        outcome, detail = "retry", str(error)
        retry_in = backoff_seconds(attempt, getattr(error, "retry_after", None),
                                   base=current_app.config["WRITE_BACK_BACKOFF_SECONDS"])
    except RECONNECT_ERRORS as error:
        outcome, detail = "paused", refusal_detail(error)
    except PermanentError as error:
        outcome, detail = "failed", str(error)
    except Exception as error:  # noqa: BLE001 - recorded and retried, never left 'delivering'
        # Not foreseen (the job's timeout among them): the row must not be left claimed;
        # it is retried like a passing failure, within the same limit of attempts.
        log.exception("write-back.error: %s", write_back_id)
        outcome, detail = "retry", f"the attempt failed: {error.__class__.__name__}"
        retry_in = backoff_seconds(attempt, base=current_app.config["WRITE_BACK_BACKOFF_SECONDS"])
    if outcome == "retry" and attempt >= max_attempts:
        outcome = "failed"
        detail += f" (gave up after {attempt} attempts)"
    elapsed = int((time.monotonic() - started) * 1000)
    _record(write_back_id, clinic.id, attempt, outcome, detail, started_at, elapsed, retry_in)
    if outcome == "retry":
        log.warning("write-back.retry: %s in %s s: %s", write_back_id, retry_in, detail)
        return Retry(max=max_attempts, interval=[retry_in])
    if outcome == "delivered":
        booking_notes.after_delivery(clinic.id, target.client_id)
    return None


def _record(write_back_id: int, clinic_id: int, attempt: int, outcome: str, detail: str,
            started_at: datetime, elapsed_ms: int, retry_in: int | None) -> None:
    moment = datetime.now(timezone.utc)
    with database.session() as db:
        row = db.get(WriteBack, write_back_id)
        db.add(WriteBackAttempt(write_back_id=write_back_id, at=started_at, outcome=outcome,
                                detail=detail[:2000], duration_ms=elapsed_ms))
        row.last_error = None if outcome == "delivered" else detail[:2000]
        row.claimed_at = None
        if outcome == "delivered":
            row.status, row.delivered_at = "delivered", moment
        elif outcome == "retry":
            row.status, row.next_attempt_at = "pending", moment + timedelta(seconds=retry_in)
        else:
            row.status = outcome
        if outcome == "paused":
            records.mark_needs_reconnecting(db.get(Clinic, clinic_id), detail)
    WRITE_BACKS.labels(outcome).inc()
    log_outcome = log.info if outcome == "delivered" else log.warning
    log_outcome("write-back.%s: %s attempt %s: %s", outcome, write_back_id, attempt, detail)


def resume(clinic_id: int) -> int:
    """The clinic reconnected: deliver what waited for it — its paused write-backs, and
    the talking points its upcoming bookings missed. How many write-backs resumed."""
    resumed = _again(clinic_id, "paused", "resumed")
    booking_notes.resume(clinic_id)
    return resumed


def retry_failed(clinic_id: int) -> int:
    """The clinic fixed what refused its write-backs (a callback URL, a receiver that
    answered 4xx): try each failed one again. How many."""
    return _again(clinic_id, "failed", "retried")


def retry_one(clinic_id: int, write_back_id: int) -> bool:
    """Try one of the clinic's failed (or waiting) write-backs again, at once; False when
    it is not the clinic's, or not waiting to be tried."""
    return _again(clinic_id, ("failed", "pending"), "retried", only=write_back_id) == 1


def _again(clinic_id: int, status: str | tuple[str, ...], why: str, *,
           only: int | None = None) -> int:
    """Queue the clinic's write-backs in ``status`` again, each with a fresh series of
    attempts: what stopped the last series has been put right (its attempts stay on
    record). How many."""
    statuses = (status,) if isinstance(status, str) else status
    with database.session() as db:
        query = select(WriteBack.id).where(WriteBack.clinic_id == clinic_id,
                                           WriteBack.status.in_(statuses))
        if only is not None:
            query = query.where(WriteBack.id == only)
        ids = list(db.scalars(query))
        db.execute(update(WriteBack).where(WriteBack.id.in_(ids))
                   .values(status="pending", last_error=None, attempts=0,
                           next_attempt_at=None))
    for write_back_id in ids:
        queue_write_back(write_back_id, nudge=f"{why}{time.time_ns()}")
    return len(ids)
