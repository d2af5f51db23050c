"""Erasing one client's data at a clinic, on the client's request.

Everything Rapport holds about the client at that clinic goes: answers and comments,
scores, write-backs and their attempts, check-ins and their links, appointments; in the
webhook events that named the client, processed or not, the raw body and headers and
the client's events (the events about others stay, so those are still processed); and
the finished or failed jobs in Redis about the client's check-ins, write-backs and
events, whose errors may quote an address. Their opt-out, if any, stays: it holds
nothing but the platform's client id (and a keyed hash of their address, never the
address), and without it check-ins would start again. The note Rapport wrote into the
booking platform is the clinic's to remove there.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from handlers.base import InboundRequest, event_to_dict
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
from plugin.tasks import queue

log = logging.getLogger(__name__)


def _stored_events(row: InboxEvent) -> list[Any] | None:
    """What the receiver read in a stored delivery (a delivery stored before that was
    kept is read again); None when it cannot be read at all."""
    if row.events is not None:
        return row.events
    try:
        read = platform_of(row.clinic).parse(
            InboundRequest(body=row.body or b"", headers=row.headers))
    except Exception:  # noqa: BLE001 - unreadable: judged by its raw bytes instead
        return None
    return [event_to_dict(event) for event in read]


def _names(event: Any, client_id: str) -> bool:
    client = event.get("client") if isinstance(event, dict) else None
    return isinstance(client, dict) and str(client.get("id")) == client_id


def _erase_from_inbox(db: Session, clinic_id: int, client_id: str) -> tuple[list[int], int]:
    """Take the client out of every stored delivery of the clinic; the ids of the rows
    changed, and how many of them were not processed yet."""
    rows = db.scalars(select(InboxEvent).where(
        InboxEvent.clinic_id == clinic_id,
        InboxEvent.body.is_not(None) | InboxEvent.events.is_not(None)))
    changed, pending = [], 0
    for row in rows:
        events = _stored_events(row)
        if events is None:
            # Not readable: named if the client's id is in it at all (erasing too much
            # of an event no one could process loses nothing).
            named, kept = client_id.encode() in (row.body or b""), []
        else:
            named = any(_names(event, client_id) for event in events)
            kept = [event for event in events if not _names(event, client_id)]
        if not named:
            continue
        # The row stays (it recognises a repeated delivery); its raw body and headers go,
        # and so do the client's events. Others' events stay, to be processed.
        row.body, row.headers, row.events = None, {}, kept
        changed.append(row.id)
        pending += row.processed_at is None
    return changed, pending


def _erase_jobs(job_ids: dict[str, set[str]], addresses: set[str]) -> int:
    """Delete the finished and failed jobs about the erased rows (their arguments name
    them), and any whose error quotes one of the client's addresses; how many."""
    try:
        registries = [registry for q in queue.queues()
                      for registry in (q.failed_job_registry, q.finished_job_registry)]
        candidates = {job_id for registry in registries for job_id in registry.get_job_ids()}
        deleted = 0
        for job_id in candidates:
            try:
                job = Job.fetch(job_id, connection=queue.connection())
            except NoSuchJobError:
                continue
            if _about_client(job, job_ids, addresses):
                for registry in registries:
                    registry.remove(job_id)
                job.delete()
                deleted += 1
        return deleted
    except RedisError as error:
        log.warning("erasure.jobs-unreachable: %s", error)
        return 0


def _about_client(job: Job, rows: dict[str, set[str]], addresses: set[str]) -> bool:
    name = (job.func_name or "").rpartition(".")[2]
    arguments = job.args[0] if job.args else None
    ids = {str(item) for item in arguments} if isinstance(arguments, list | tuple) else \
        {str(arguments)}
    if ids & rows.get(name, set()):
        return True
    result = job.latest_result()
    text = (getattr(result, "exc_string", None) or "").lower()
    return any(address in text for address in addresses)


def erase_client(db: Session, clinic_id: int, client_id: str) -> dict[str, int]:
    """Delete what Rapport keeps about ``client_id`` at the clinic; what was removed.

    ``events_pending`` counts the events taken out of deliveries not processed yet: they
    are never processed now, so nothing about the client comes back from them."""
    responses = select(Response.id).where(Response.clinic_id == clinic_id,
                                          Response.client_external_id == client_id)
    write_backs = select(WriteBack.id).where(WriteBack.response_id.in_(responses))
    check_ins = select(CheckIn.id).where(CheckIn.clinic_id == clinic_id,
                                              CheckIn.client_external_id == client_id)
    counts = {}
    addresses = {email.lower() for email in db.scalars(select(CheckIn.email).where(
        CheckIn.id.in_(check_ins), CheckIn.email.is_not(None)))}
    rows = {
        "send_check_in": set(map(str, db.scalars(check_ins))),
        "deliver_write_back": set(map(str, db.scalars(write_backs))),
    }
    rows["send_reminder"] = rows["expire_check_in"] = rows["send_check_in"]
    db.execute(delete(WriteBackAttempt).where(WriteBackAttempt.write_back_id.in_(write_backs)))
    db.execute(delete(WriteBack).where(WriteBack.id.in_(write_backs)))
    counts["responses"] = db.execute(delete(Response).where(Response.id.in_(responses))).rowcount
    db.execute(delete(SurveyLink).where(SurveyLink.check_in_id.in_(check_ins)))
    counts["check_ins"] = db.execute(
        delete(CheckIn).where(CheckIn.id.in_(check_ins))).rowcount
    counts["appointments"] = db.execute(delete(Appointment).where(
        Appointment.clinic_id == clinic_id, Appointment.client_external_id == client_id)
    ).rowcount

    addresses |= _addresses_in_events(db, clinic_id, client_id)
    changed, pending = _erase_from_inbox(db, clinic_id, client_id)
    rows["ingest_events"] = set(map(str, changed))
    counts["event_bodies"] = len(changed)
    counts["events_pending"] = pending
    counts["jobs"] = _erase_jobs(rows, addresses)
    counts["opted_out"] = int(db.scalar(select(OptOut.id).where(
        OptOut.clinic_id == clinic_id, OptOut.client_external_id == client_id)) is not None)
    return counts


def _addresses_in_events(db: Session, clinic_id: int, client_id: str) -> set[str]:
    """The client's addresses as the stored events give them."""
    found = set()
    for events in db.scalars(select(InboxEvent.events).where(
            InboxEvent.clinic_id == clinic_id, InboxEvent.events.is_not(None))):
        for event in events or ():
            if _names(event, client_id) and event["client"].get("email"):
                found.add(str(event["client"]["email"]).lower())
    return found
