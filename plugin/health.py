"""Is Rapport healthy? For load balancers (``/healthz``) and clinic admins (CLI)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from redis.exceptions import RedisError
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from plugin import instruments, queue, storage
from plugin.models import Clinic, InboxEvent, Invitation, WriteBack


def check() -> dict:
    """Whether the database and Redis answer, how much work is waiting, and which
    licensed instrument files were skipped as broken."""
    report: dict = {"ok": True}
    try:
        with storage.session() as db:
            db.execute(text("SELECT 1"))
        report["database"] = "ok"
    except SQLAlchemyError as error:
        report.update(ok=False, database=f"unavailable: {error.__class__.__name__}")
    try:
        queue.connection().ping()
        report["redis"] = "ok"
        report["queued_jobs"] = queue.queue().count
    except RedisError as error:
        report.update(ok=False, redis=f"unavailable: {error.__class__.__name__}")
    # A broken instrument file is skipped and its clinics fall back to the shipped
    # questionnaire: Rapport still serves, so this is for the admin, not the balancer.
    report["instrument_files_skipped"] = instruments.problems()
    return report


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
        select(Invitation.status, func.count()).where(
            Invitation.clinic_id == clinic.id, Invitation.created_at >= week_ago,
            Invitation.test.is_(False))
        .group_by(Invitation.status)).all())
    summary = {
        "status": clinic.status,
        "status_detail": clinic.status_detail,
        "last_event_at": last_event.isoformat() if last_event else None,
        "unprocessed_events": count(select(func.count(InboxEvent.id)).where(
            InboxEvent.clinic_id == clinic.id, InboxEvent.processed_at.is_(None))),
        "invitations_last_7_days": statuses,
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
            select(Invitation.id, Invitation.reason).where(
                Invitation.clinic_id == clinic.id, Invitation.created_at >= week_ago,
                Invitation.test.is_(False), Invitation.status.in_(("failed", "interrupted")))
            .order_by(Invitation.id.desc()).limit(1)).first()
        # Settled once a later check-in went out: the week's count still shows it.
        sent_since = db.scalar(select(func.count(Invitation.id)).where(
            Invitation.clinic_id == clinic.id, Invitation.id > problem.id,
            Invitation.test.is_(False), Invitation.sent_at.is_not(None)))
        if not sent_since:
            summary["last_check_in_problem"] = problem.reason
    if clinic.platform == "square" and clinic.status != "active":
        summary.update(square_remedy(clinic))
    return summary


def square_remedy(clinic: Clinic) -> dict:
    """How an admin brings a Square clinic back: its own Connect link (OAuth), or a new
    personal access token from the command line (manual mode, which the link refuses)."""
    from plugin.clinics import credentials
    from plugin.square_install import connect_url

    if credentials(clinic).get("mode") == "oauth":
        url = connect_url(clinic)
        account = f" as the owner of {clinic.account_id}" if clinic.account_id else ""
        return {"connect_url": url,
                "remedy": f"open {url}, signed in to Square{account}, and allow access"}
    return {"remedy": "create a new personal access token in the Square Developer Console "
                      f"and run: rapport clinic square {clinic.key} --access-token NEW"}
