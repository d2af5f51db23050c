"""Erasing one client's data at a clinic, on the client's request.

Everything Rapport holds about the client at that clinic goes: answers and comments,
scores, write-backs and their attempts, check-ins and their links, appointments, and
the bodies of the webhook events that named the client. Their opt-out, if any, stays:
it holds nothing but the platform's client id, and without it check-ins would start
again. The note Rapport wrote into the booking platform is the clinic's to remove
there.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from plugin.models import (
    Appointment,
    InboxEvent,
    Invitation,
    OptOut,
    Response,
    SurveyLink,
    WriteBack,
    WriteBackAttempt,
)


def _names_client(value: Any, client_id: str) -> bool:
    """Whether a webhook body names the client: a ``client`` object with that ``id``
    (generic) or a ``customer_id`` (Square), at any depth."""
    if isinstance(value, dict):
        client = value.get("client")
        if isinstance(client, dict) and client.get("id") is not None \
                and str(client["id"]) == client_id:
            return True
        if value.get("customer_id") is not None and str(value["customer_id"]) == client_id:
            return True
        return any(_names_client(item, client_id) for item in value.values())
    if isinstance(value, list):
        return any(_names_client(item, client_id) for item in value)
    return False


def erase_client(db: Session, clinic_id: int, client_id: str) -> dict[str, int]:
    """Delete what Rapport keeps about ``client_id`` at the clinic; what was removed.

    ``events_pending`` counts webhook events naming the client that are not processed
    yet: their bodies are needed to process them, so they are left, and erasing again
    once the worker has run removes what they add."""
    responses = select(Response.id).where(Response.clinic_id == clinic_id,
                                          Response.client_external_id == client_id)
    write_backs = select(WriteBack.id).where(WriteBack.response_id.in_(responses))
    invitations = select(Invitation.id).where(Invitation.clinic_id == clinic_id,
                                              Invitation.client_external_id == client_id)
    counts = {}
    db.execute(delete(WriteBackAttempt).where(WriteBackAttempt.write_back_id.in_(write_backs)))
    db.execute(delete(WriteBack).where(WriteBack.id.in_(write_backs)))
    counts["responses"] = db.execute(delete(Response).where(Response.id.in_(responses))).rowcount
    db.execute(delete(SurveyLink).where(SurveyLink.invitation_id.in_(invitations)))
    counts["check_ins"] = db.execute(
        delete(Invitation).where(Invitation.id.in_(invitations))).rowcount
    counts["appointments"] = db.execute(delete(Appointment).where(
        Appointment.clinic_id == clinic_id, Appointment.client_external_id == client_id)
    ).rowcount

    events = db.execute(select(InboxEvent.id, InboxEvent.body, InboxEvent.processed_at).where(
        InboxEvent.clinic_id == clinic_id, InboxEvent.body.is_not(None))).all()
    naming, pending = [], 0
    for event_id, body, processed_at in events:
        try:
            parsed = json.loads(body)
        except ValueError:
            continue
        if _names_client(parsed, client_id):
            if processed_at is None:
                pending += 1
            else:
                naming.append(event_id)
    if naming:
        # The row stays (it recognises a repeated delivery); its body goes.
        db.execute(update(InboxEvent).where(InboxEvent.id.in_(naming)).values(body=None))
    counts["event_bodies"] = len(naming)
    counts["events_pending"] = pending
    counts["opted_out"] = int(db.scalar(select(OptOut.id).where(
        OptOut.clinic_id == clinic_id, OptOut.client_external_id == client_id)) is not None)
    return counts
