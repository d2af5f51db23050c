"""A clinic's history written straight into its tables, at the dates a test needs:
visits, check-ins, answers (assessed by Rapport's own scoring) and write-backs. For
figures over months that the real loop, running now, cannot date."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from plugin.pipeline import instruments
from plugin.pipeline.assessment import assessment_for
from plugin.store.models import Appointment, CheckIn, Response, WriteBack
from questionnaires import answer_schema
from tests.support.survey import answers_for

_counter = iter(range(1, 1_000_000))


def visit(db: Session, clinic_id: int, client_id: str, end: datetime, *,
          therapist: tuple[str, str] = ("T-1", "Dana"), status: str = "completed",
          external_id: str | None = None) -> Appointment:
    appointment = Appointment(
        clinic_id=clinic_id, external_id=external_id or f"A-{next(_counter)}",
        status=status, start_at=end - timedelta(hours=1), end_at=end,
        therapist_id=therapist[0], therapist_name=therapist[1], client_external_id=client_id,
        completed_at=end if status == "completed" else None)
    db.add(appointment)
    db.flush()
    return appointment


def check_in(db: Session, appointment: Appointment, *, sent_at: datetime | None,
             status: str = "sent", test: bool = False, first_name: str | None = None,
             instrument: str = "rapport-pulse") -> CheckIn:
    row = CheckIn(
        clinic_id=appointment.clinic_id, appointment_id=appointment.id,
        client_external_id=appointment.client_external_id,
        therapist_id=appointment.therapist_id, status=status, test=test,
        instrument_id=instrument, send_at=sent_at, sent_at=sent_at,
        expires_at=sent_at + timedelta(days=7) if sent_at else None,
        first_name=first_name, email=f"{appointment.client_external_id}@example.com"
        if first_name else None)
    db.add(row)
    db.flush()
    return row


def answer(db: Session, row: CheckIn, value: int, at: datetime) -> Response:
    """The client answers every item meaning ``value`` (0–10 on the pulse), at ``at``."""
    instrument = instruments.get(row.instrument_id)
    loaded = answer_schema(instrument).load(answers_for(instrument, value))
    row.status, row.answered_at, row.email, row.first_name = "answered", at, None, None
    response = Response(
        check_in_id=row.id, clinic_id=row.clinic_id,
        client_external_id=row.client_external_id, therapist_id=row.therapist_id,
        instrument_id=instrument.id, instrument_version=str(instrument.version),
        answers=loaded["answers"], submitted_at=at)
    db.add(response)
    db.flush()
    assessment_for(db, response)
    return response


def write_back(db: Session, response: Response, *, status: str = "failed",
               last_error: str | None = "the receiver answered 410", attempts: int = 1,
               ) -> WriteBack:
    row = WriteBack(response_id=response.id, clinic_id=response.clinic_id, status=status,
                    last_error=last_error, attempts=attempts)
    db.add(row)
    db.flush()
    return row


def answered_visit(db: Session, clinic_id: int, client_id: str, end: datetime, value: int,
                   **options) -> Response:
    """A visit, its check-in sent an hour later, answered two hours later."""
    therapist = options.pop("therapist", ("T-1", "Dana"))
    appointment = visit(db, clinic_id, client_id, end, therapist=therapist)
    row = check_in(db, appointment, sent_at=end + timedelta(hours=1), **options)
    return answer(db, row, value, end + timedelta(hours=3))
