"""Delivering a response's scores, talking points and note back to the platform.

The assessment is computed once, on the first attempt, and stored with the response,
so every retry sends the same note. Transient failures (429, 5xx, timeouts) are
retried with backoff, honouring ``Retry-After``; other 4xx fail at once; a refused
credential pauses the clinic's write-backs until it reconnects. Every attempt is
recorded in ``write_back_attempts``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from zoneinfo import ZoneInfo

from flask import current_app
from rq import Retry
from sqlalchemy import select, update
from sqlalchemy.orm import Session

import handlers
from handlers.base import (
    RECONNECT_ERRORS,
    ConflictError,
    Note,
    PermanentError,
    TransientError,
    WriteBackTarget,
)
from plugin import accounts, booking_notes, clinics, instruments, storage
from plugin.installation import installation_id
from plugin.models import Appointment, Clinic, Response, WriteBack, WriteBackAttempt
from plugin.queue import backoff_seconds, enqueue
from questionnaires import (
    NOTE_BLOCK_END,
    NOTE_BLOCK_START,
    FlagSettings,
    PastResult,
    assess,
    note_parts,
    render_parts,
    score,
)

log = logging.getLogger(__name__)


def _history(db: Session, response: Response) -> list[PastResult]:
    rows = db.scalars(select(Response).where(
        Response.clinic_id == response.clinic_id,
        Response.client_external_id == response.client_external_id,
        Response.id != response.id,
        Response.submitted_at <= response.submitted_at,
    ).order_by(Response.submitted_at)).all()
    return [PastResult(at=r.submitted_at, therapist_id=r.therapist_id,
                       instrument_id=r.instrument_id, overall=r.overall,
                       subscales=r.result["history"]["subscales"],
                       at_ceiling=r.result["history"]["at_ceiling"],
                       low=r.result["history"].get("low"))
            for r in rows if r.result.get("history")]


def wire_summary(assessment: dict) -> dict:
    """The scores as every platform's write-back receives them (README, "Callback")."""
    return {
        "instrument": assessment["instrument"],
        "language": assessment["language"],
        "scores": {key: assessment[key] for key in
                   ("scored", "reason", "overall", "overall_raw", "subscales", "band")},
        "trend": {"values": assessment["trend"], "sparkline": assessment["sparkline"],
                  **assessment["change"], "all_therapists": assessment["client"]},
        "flags": assessment["flags"],
        "positive": assessment["positive"],
        "comment": assessment["comment"],
    }


def assessment_for(db: Session, response: Response) -> dict:
    """Score the response against the client's history, once: retries send the same."""
    if response.result.get("note"):
        return response.result
    clinic = response.clinic
    instrument = instruments.get(response.instrument_id)
    scored = score(instrument, response.answers)
    history = _history(db, response)
    pair = [p for p in history if p.therapist_id == response.therapist_id]
    settings = FlagSettings(**(clinic.settings or {}).get("flags", {}))
    assessment = assess(instrument, scored, response.answers, response.comment, history, pair,
                        settings, clinic.language)
    appointment = response.invitation.appointment
    visit = (appointment.end_at or response.submitted_at).astimezone(ZoneInfo(clinic.timezone))
    # Kept with the note, to render it again shorter where room is short (a booking's).
    parts = note_parts(assessment, language=clinic.language, visit_date=visit.date(),
                       therapist_name=appointment.therapist_name)
    note = render_parts(parts, limit=handlers.adapter(clinic.platform).NOTE_LIMIT)
    response.overall = scored.overall if scored.scored else None
    response.result = {
        "summary": wire_summary(assessment.to_dict()),
        "talking_points": assessment.talking_points,
        "note": note,
        "note_parts": parts,
        # What later visits compare against.
        "history": {"subscales": {k: v.normalized for k, v in scored.subscales.items()},
                    "at_ceiling": scored.at_ceiling, "low": assessment.is_low},
    }
    return response.result


def note_of(result: dict) -> Note:
    # Answers stored before notes kept their parts cannot be rendered shorter.
    parts = result.get("note_parts")
    return Note(text=result["note"], block_start=NOTE_BLOCK_START, block_end=NOTE_BLOCK_END,
                summary=result["summary"], talking_points=tuple(result["talking_points"]),
                render=partial(render_parts, parts) if parts else None)


def delivery_id(write_back_id: int) -> str:
    """The same on every attempt of one write-back, so a receiver can drop a retry it
    already has; and distinct between installations, so a receiver never drops a new
    installation's first write-back as the repeat of an earlier one's."""
    return f"rapport-wb-{installation_id()}-{write_back_id}"


def deliver(write_back_id: int):
    max_attempts = current_app.config["WRITE_BACK_MAX_ATTEMPTS"]
    with storage.session() as db:
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
        result = assessment_for(db, response)
        appointment: Appointment = response.invitation.appointment
        target = WriteBackTarget(client_id=response.client_external_id,
                                 appointment_id=appointment.external_id,
                                 therapist_id=response.therapist_id)
        row.attempts += 1
        row.status, row.claimed_at = "delivering", datetime.now(timezone.utc)
        attempt, submitted_at = row.attempts, response.submitted_at
    adapter = handlers.adapter(clinic.platform)
    started, started_at = time.monotonic(), datetime.now(timezone.utc)
    outcome, detail, retry_in = "delivered", "", None
    try:
        written = adapter.write_back(
            accounts.credentials_for(clinic), target, note_of(result),
            delivery_id=delivery_id(write_back_id), occurred_at=submitted_at)
        detail = f"{written.target}: {dict(written.detail)}"
    except (TransientError, ConflictError) as error:
        outcome, detail = "retry", str(error)
        retry_in = backoff_seconds(attempt, getattr(error, "retry_after", None),
                                   base=current_app.config["WRITE_BACK_BACKOFF_SECONDS"])
        if attempt >= max_attempts:
            outcome = "failed"
            detail += f" (gave up after {attempt} attempts)"
    except RECONNECT_ERRORS as error:
        outcome, detail = "paused", clinics.refusal_detail(error)
    except PermanentError as error:
        outcome, detail = "failed", str(error)
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
    with storage.session() as db:
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
            clinics.mark_needs_reconnecting(db.get(Clinic, clinic_id), detail)
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


def _again(clinic_id: int, status: str, why: str) -> int:
    with storage.session() as db:
        ids = list(db.scalars(select(WriteBack.id).where(
            WriteBack.clinic_id == clinic_id, WriteBack.status == status)))
        db.execute(update(WriteBack).where(WriteBack.id.in_(ids))
                   .values(status="pending", last_error=None))
    for write_back_id in ids:
        enqueue("plugin.jobs.write_back", write_back_id,
                job_id=f"writeback-{write_back_id}-{why}-{int(time.time())}")
    return len(ids)
