"""A client's answers, assessed once: scored, set against their history, turned into
talking points and the therapist's note, and stored with the answers.

The assessment is made when the answers arrive (``plugin.web.survey``) and kept in
``Response.result``; the write-back, the callback's payload and the next booking's note
all read it, so every retry and every place carries the same note.
"""

from __future__ import annotations

from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

import handlers
from handlers.base import Note
from plugin.pipeline import instruments
from plugin.store.models import CheckIn, Response
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


def _history(db: Session, response: Response) -> list[PastResult]:
    """The client's earlier answers. An admin's test check-in is nobody's history: it is
    never compared against, so it moves no client's trend and raises no flag."""
    rows = db.scalars(select(Response).join(CheckIn, CheckIn.id == Response.check_in_id).where(
        Response.clinic_id == response.clinic_id,
        Response.client_external_id == response.client_external_id,
        Response.id != response.id,
        Response.submitted_at <= response.submitted_at,
        CheckIn.test.is_(False),
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
    """The response's assessment: made and stored the first time, read afterwards."""
    if response.result.get("note"):
        return response.result
    clinic = response.clinic
    instrument = instruments.get(response.instrument_id)
    scored = score(instrument, response.answers)
    history = _history(db, response)
    pair = [past for past in history if past.therapist_id == response.therapist_id]
    settings = FlagSettings(**(clinic.settings or {}).get("flags", {}))
    assessment = assess(instrument, scored, response.answers, response.comment, history, pair,
                        settings, clinic.language)
    appointment = response.check_in.appointment
    visit = (appointment.end_at or response.submitted_at).astimezone(ZoneInfo(clinic.timezone))
    # Kept with the note, to render it again shorter where room is short (a booking's).
    parts = note_parts(assessment, language=clinic.language, visit_date=visit.date(),
                       therapist_name=appointment.therapist_name)
    limit = handlers.platform(clinic.platform).capabilities.note_limit
    response.overall = scored.overall if scored.scored else None
    response.result = {
        "summary": wire_summary(assessment.to_dict()),
        "talking_points": assessment.talking_points,
        "note": render_parts(parts, limit=limit),
        "note_parts": parts,
        # What later visits compare against.
        "history": {"subscales": {k: v.normalized for k, v in scored.subscales.items()},
                    "at_ceiling": scored.at_ceiling, "low": assessment.is_low},
    }
    return response.result


def note_of(result: dict) -> Note:
    """The stored note, able to render itself shorter (answers stored before notes kept
    their parts cannot)."""
    parts = result.get("note_parts")
    return Note(text=result["note"], block_start=NOTE_BLOCK_START, block_end=NOTE_BLOCK_END,
                summary=result["summary"], talking_points=tuple(result["talking_points"]),
                render=partial(render_parts, parts) if parts else None)
