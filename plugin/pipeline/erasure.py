"""Erasing one client's data at a clinic, on the client's request.

Everything Rapport holds about the client at that clinic goes: answers and comments,
scores, write-backs and their attempts, check-ins and their links, appointments, and
the bodies of the webhook events that named the client. Their opt-out, if any, stays:
it holds nothing but the platform's client id, and without it check-ins would start
again. The note Rapport wrote into the booking platform is the clinic's to remove
there.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from handlers.base import AdapterError, InboundRequest, event_to_dict
from plugin.clinics.platforms import platform_of
from plugin.store.models import (
    Appointment,
    CheckIn,
    InboxEvent,
    OptOut,
    Response,
    SurveyLink,
    WriteBack,
    WriteBackAttempt,
)


def _names_client(row: InboxEvent, client_id: str) -> bool:
    """Whether a stored delivery is about the client: one of the events the platform's
    adapter read in it names them (a delivery stored before events were kept is read
    again)."""
    if row.events is not None:
        events = row.events
    else:
        try:
            read = platform_of(row.clinic).parse(
                InboundRequest(body=row.body or b"", headers=row.headers))
        except AdapterError:
            return False
        events = [event_to_dict(event) for event in read]
    return any(str((event.get("client") or {}).get("id")) == client_id for event in events)


def erase_client(db: Session, clinic_id: int, client_id: str) -> dict[str, int]:
    """Delete what Rapport keeps about ``client_id`` at the clinic; what was removed.

    ``events_pending`` counts webhook events naming the client that are not processed
    yet: their bodies are needed to process them, so they are left, and erasing again
    once the worker has run removes what they add."""
    responses = select(Response.id).where(Response.clinic_id == clinic_id,
                                          Response.client_external_id == client_id)
    write_backs = select(WriteBack.id).where(WriteBack.response_id.in_(responses))
    check_ins = select(CheckIn.id).where(CheckIn.clinic_id == clinic_id,
                                              CheckIn.client_external_id == client_id)
    counts = {}
    db.execute(delete(WriteBackAttempt).where(WriteBackAttempt.write_back_id.in_(write_backs)))
    db.execute(delete(WriteBack).where(WriteBack.id.in_(write_backs)))
    counts["responses"] = db.execute(delete(Response).where(Response.id.in_(responses))).rowcount
    db.execute(delete(SurveyLink).where(SurveyLink.check_in_id.in_(check_ins)))
    counts["check_ins"] = db.execute(
        delete(CheckIn).where(CheckIn.id.in_(check_ins))).rowcount
    counts["appointments"] = db.execute(delete(Appointment).where(
        Appointment.clinic_id == clinic_id, Appointment.client_external_id == client_id)
    ).rowcount

    stored = db.scalars(select(InboxEvent).where(
        InboxEvent.clinic_id == clinic_id, InboxEvent.body.is_not(None)))
    naming, pending = [], 0
    for row in stored:
        if _names_client(row, client_id):
            if row.processed_at is None:
                pending += 1
            else:
                naming.append(row.id)
    if naming:
        # The row stays (it recognises a repeated delivery); its body and what was read
        # in it go.
        db.execute(update(InboxEvent).where(InboxEvent.id.in_(naming))
                   .values(body=None, events=None))
    counts["event_bodies"] = len(naming)
    counts["events_pending"] = pending
    counts["opted_out"] = int(db.scalar(select(OptOut.id).where(
        OptOut.clinic_id == clinic_id, OptOut.client_external_id == client_id)) is not None)
    return counts
