"""Is a clinic healthy? Connected, work flowing, what failed and how to fix it, how many
calls Rapport made to its platform this month, and for a polled platform when it was
last and will next be polled: for its admin (``rapport clinic list``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from handlers.base import Completion, Connection
from plugin.clinics import api_calls, records
from plugin.clinics.oauth import connect_url
from plugin.clinics.platforms import platform_of
from plugin.store.models import CheckIn, Clinic, InboxEvent, PollState, WriteBack


def clinic_summary(db, clinic: Clinic) -> dict:
    """At a glance, for one clinic: is it connected, is work flowing, what failed.

    An admin's test check-ins are left out: ``send-test`` reports its own outcome, and a
    test that failed before the mail settings were fixed is no client's missing email."""
    week_ago = datetime.now(timezone.utc) - timedelta(days=7)

    def count(statement):
        return db.scalar(statement) or 0

    last_event = db.scalar(select(func.max(InboxEvent.received_at))
                           .where(InboxEvent.clinic_id == clinic.id))
    statuses = dict(db.execute(
        select(CheckIn.status, func.count()).where(
            CheckIn.clinic_id == clinic.id, CheckIn.created_at >= week_ago,
            CheckIn.test.is_(False))
        .group_by(CheckIn.status)).all())
    summary = {
        "status": clinic.status,
        "status_detail": clinic.status_detail,
        "last_event_at": last_event.isoformat() if last_event else None,
        "unprocessed_events": count(select(func.count(InboxEvent.id)).where(
            InboxEvent.clinic_id == clinic.id, InboxEvent.processed_at.is_(None))),
        "check_ins_last_7_days": statuses,
        "write_backs_failed": count(select(func.count(WriteBack.id)).where(
            WriteBack.clinic_id == clinic.id, WriteBack.status == "failed")),
        # Waiting for the clinic to reconnect; they resume by themselves then.
        "write_backs_paused": count(select(func.count(WriteBack.id)).where(
            WriteBack.clinic_id == clinic.id, WriteBack.status == "paused")),
        "write_backs_pending": count(select(func.count(WriteBack.id)).where(
            WriteBack.clinic_id == clinic.id,
            WriteBack.status.in_(("pending", "delivering")))),
    }
    if summary["write_backs_failed"]:
        summary["last_write_back_error"] = db.scalar(
            select(WriteBack.last_error).where(
                WriteBack.clinic_id == clinic.id, WriteBack.status == "failed")
            .order_by(WriteBack.id.desc()).limit(1))
    if statuses.get("failed") or statuses.get("interrupted"):
        problem = db.execute(
            select(CheckIn.id, CheckIn.reason).where(
                CheckIn.clinic_id == clinic.id, CheckIn.created_at >= week_ago,
                CheckIn.test.is_(False), CheckIn.status.in_(("failed", "interrupted")))
            .order_by(CheckIn.id.desc()).limit(1)).first()
        # Settled once a later check-in went out: the week's count still shows it.
        sent_since = db.scalar(select(func.count(CheckIn.id)).where(
            CheckIn.clinic_id == clinic.id, CheckIn.id > problem.id,
            CheckIn.test.is_(False), CheckIn.sent_at.is_not(None)))
        if not sent_since:
            summary["last_check_in_problem"] = problem.reason
    summary["api_calls_this_month"] = api_calls.this_month(db, clinic.id)
    if platform_of(clinic).capabilities.completion is Completion.POLLING:
        summary.update(polling(db, clinic))
    if clinic.status != "active":
        summary.update(remedy(clinic))
    return summary


def polling(db, clinic: Clinic) -> dict:
    """When the clinic's platform was last and will next be polled, and what went wrong
    with the last poll (None once one succeeds)."""
    state = db.get(PollState, clinic.id)

    def stamp(moment):
        return moment.isoformat() if moment else None

    return {"last_poll_at": stamp(state and state.last_polled_at),
            "next_poll_at": stamp(state and state.next_poll_at),
            "last_poll_problem": state and state.last_problem,
            "last_poll_problem_at": stamp(state and state.last_problem_at)}


def remedy(clinic: Clinic) -> dict:
    """How an admin brings a clinic back: its connect link for a clinic connected through
    the platform's sign-in, otherwise what its platform says to do."""
    platform = platform_of(clinic)
    values = records.credentials(clinic)
    if platform.connection_of(values) is Connection.OAUTH:
        url = connect_url(clinic)
        account = f" as the owner of {clinic.account_id}" if clinic.account_id else ""
        return {"connect_url": url,
                "remedy": f"open {url}, signed in to {platform.title}{account}, and allow access"}
    return {"remedy": platform.reconnect_hint(values, clinic.key)}
