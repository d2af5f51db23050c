"""Is the clinic healthy? Events received, check-ins sent, answered and expired,
write-backs delivered, retrying and failed (with the platform's reason and a retry
button), "needs reconnecting" with the fix, and the admin's own test check-ins.

A write-back that has failed once already needs attention, not only after its last
attempt: the reason is shown while Rapport is still retrying. Test check-ins are
counted nowhere but in their own list.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import func, select

from plugin.clinics import admins, health
from plugin.pipeline import sending, write_back
from plugin.store import database
from plugin.store.models import CheckIn, Clinic, InboxEvent, Response, WriteBack
from plugin.web.admin import access
from plugin.web.admin.clinic import connection_view

log = logging.getLogger(__name__)
bp = Blueprint("admin_health", __name__, url_prefix="/admin/clinics/<key>")

PERIODS = (("Last 7 days", 7), ("Last 30 days", 30))
ATTENTION = 20  # write-backs listed at most


def check_in_counts(db, clinic_id: int, since: datetime) -> dict[str, int]:
    """Check-ins sent since then (tests left out), and of those how many were answered,
    expired, or are still open."""
    rows = db.execute(select(CheckIn.status, func.count()).where(
        CheckIn.clinic_id == clinic_id, CheckIn.test.is_(False),
        CheckIn.sent_at.is_not(None), CheckIn.sent_at >= since)
        .group_by(CheckIn.status)).all()
    by_status = dict(rows)
    sent = sum(by_status.values())
    return {"sent": sent, "answered": by_status.get("answered", 0),
            "expired": by_status.get("expired", 0),
            "open": sent - by_status.get("answered", 0) - by_status.get("expired", 0)}


def write_back_counts(db, clinic_id: int, since: datetime) -> dict[str, int]:
    def count(*conditions) -> int:
        return db.scalar(select(func.count(WriteBack.id)).where(
            WriteBack.clinic_id == clinic_id, *conditions)) or 0

    return {
        "delivered": count(WriteBack.status == "delivered", WriteBack.delivered_at >= since),
        "retrying": count(WriteBack.status.in_(("pending", "delivering")),
                          WriteBack.attempts >= 1, WriteBack.last_error.is_not(None)),
        "waiting": count(WriteBack.status.in_(("pending", "delivering")),
                         WriteBack.last_error.is_(None)),
        "failed": count(WriteBack.status == "failed"),
        "paused": count(WriteBack.status == "paused"),
    }


def needing_attention(db, clinic_id: int) -> list[dict]:
    """Write-backs that failed at least once and are not delivered: newest first."""
    rows = db.execute(select(WriteBack, Response.client_external_id).join(
        Response, Response.id == WriteBack.response_id).where(
        WriteBack.clinic_id == clinic_id,
        WriteBack.status.in_(("pending", "delivering", "failed", "paused")),
        WriteBack.last_error.is_not(None)).order_by(WriteBack.id.desc()).limit(ATTENTION)).all()
    return [{"id": row.id, "client_id": client_id, "status": row.status,
             "state": _state(row), "attempts": row.attempts, "reason": row.last_error,
             "next_attempt_at": row.next_attempt_at,
             "retry": row.status in ("failed", "pending")}
            for row, client_id in rows]


def _state(row: WriteBack) -> str:
    return {"failed": "Failed: Rapport stopped trying",
            "paused": "Waiting for the clinic to reconnect",
            "delivering": "Being sent now"}.get(row.status, "Failed once; Rapport is retrying")


def events(db, clinic_id: int, since: datetime) -> dict:
    received = db.scalar(select(func.count(InboxEvent.id)).where(
        InboxEvent.clinic_id == clinic_id, InboxEvent.received_at >= since)) or 0
    failing = db.execute(select(InboxEvent.received_at, InboxEvent.last_error).where(
        InboxEvent.clinic_id == clinic_id, InboxEvent.processed_at.is_(None),
        InboxEvent.last_error.is_not(None)).order_by(InboxEvent.id.desc()).limit(5)).all()
    return {"received": received, "failing": failing}


def tests_of(db, clinic_id: int) -> list[CheckIn]:
    return list(db.scalars(select(CheckIn).where(
        CheckIn.clinic_id == clinic_id, CheckIn.test.is_(True))
        .order_by(CheckIn.id.desc()).limit(5)))


def report(clinic: Clinic) -> dict:
    moment = datetime.now(timezone.utc)
    with database.session() as db:
        clinic = db.get(Clinic, clinic.id)
        summary = health.clinic_summary(db, clinic)
        periods = [{"label": label,
                    "events": events(db, clinic.id, moment - timedelta(days=days)),
                    "check_ins": check_in_counts(db, clinic.id, moment - timedelta(days=days)),
                    "write_backs": write_back_counts(db, clinic.id,
                                                     moment - timedelta(days=days))}
                   for label, days in PERIODS]
        attention = needing_attention(db, clinic.id)
        tests = [{"to": c.email, "status": c.status, "reason": c.reason,
                  "sent_at": c.sent_at, "answered_at": c.answered_at, "created_at": c.created_at}
                 for c in tests_of(db, clinic.id)]
    return {"summary": summary, "periods": periods, "attention": attention, "tests": tests,
            "ok": clinic.status == "active" and not attention
            and not summary.get("last_check_in_problem")}


@bp.get("/health")
@access.clinic_page
def page(who: admins.SignedIn, clinic: Clinic):
    return render_template("admin/health.html", title=f"Health · {clinic.name}", who=who,
                           clinic=clinic, tab="health", report=report(clinic),
                           view=connection_view(clinic))


@bp.post("/test")
@access.clinic_page
def send_test(who: admins.SignedIn, clinic: Clinic):
    """A real check-in to the signed-in admin's own address, marked as a test."""
    check_in = sending.send_test(clinic.id, who.email)
    log.info("admin.test-sent: clinic %s by admin %s: %s", clinic.id, who.admin_id,
             check_in.status)
    if check_in.status == "sent":
        flash(f"A test check-in went to {who.email}. Answer it on your phone: the thank-you "
              "page shows the note your therapists would read. It counts nowhere.")
    else:
        flash(f"The test was not sent: {check_in.reason}", "problem")
    return redirect(url_for(".page", key=clinic.key), 303)


@bp.post("/write-backs/<int:write_back_id>/retry")
@access.clinic_page
def retry(who: admins.SignedIn, clinic: Clinic, write_back_id: int):
    with database.session() as db:
        row = db.get(WriteBack, write_back_id)
        if row is None or row.clinic_id != clinic.id:
            log.warning("admin.other-clinic: admin %s asked to retry write-back %s",
                        who.admin_id, write_back_id)
            abort(404)
    if not write_back.retry_one(clinic.id, write_back_id):
        flash("This write-back is not waiting to be retried.", "problem")
        return redirect(url_for(".page", key=clinic.key), 303)
    log.info("admin.write-back-retried: %s by admin %s", write_back_id, who.admin_id)
    flash("Queued again: a worker sends it in a moment. Reload to see how it went.")
    return redirect(url_for(".page", key=clinic.key), 303)


@bp.post("/write-backs/retry")
@access.clinic_page
def retry_all(who: admins.SignedIn, clinic: Clinic):
    retried = write_back.retry_failed(clinic.id)
    flash(f"{retried} failed write-back(s) queued again." if retried
          else "No failed write-backs.")
    return redirect(url_for(".page", key=clinic.key), 303)
