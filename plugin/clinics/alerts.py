"""Emails to a clinic's admins when it needs them: the clinic needs reconnecting, or its
notes keep failing to reach the platform. At most one a day per clinic and kind (an
``admin_alerts`` row per UTC day, unique, so two runs at once send one). Run hourly by
the cron (``plugin.tasks.schedule``)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from plugin.clinics import health
from plugin.pipeline import mail
from plugin.store import database
from plugin.store.models import Admin, AdminAlert, Clinic, WriteBack
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)

FAILING_AFTER = 2  # write-backs failed (or retrying after a failure) that make an alert


def due(db, clinic: Clinic) -> dict[str, str]:
    """What the clinic's admins should hear about now, by kind, with the detail."""
    found = {}
    if clinic.status == "needs_reconnecting":
        fix = health.remedy(clinic).get("remedy", "")
        found["needs_reconnecting"] = (
            f"{clinic.name} needs reconnecting: {clinic.status_detail or 'access refused'}. "
            f"Check-ins and notes wait until then. To fix: {fix}")
    failing = db.scalar(select(func.count(WriteBack.id)).where(
        WriteBack.clinic_id == clinic.id,
        (WriteBack.status == "failed") | (
            WriteBack.status.in_(("pending", "delivering")) & WriteBack.last_error.is_not(None)),
        WriteBack.created_at >= datetime.now(timezone.utc) - timedelta(days=7))) or 0
    if failing >= FAILING_AFTER:
        latest = db.scalar(select(WriteBack.last_error).where(
            WriteBack.clinic_id == clinic.id, WriteBack.last_error.is_not(None))
            .order_by(WriteBack.id.desc()).limit(1))
        found["write_backs_failing"] = (
            f"{failing} note(s) for {clinic.name} could not be delivered to the booking "
            f"platform this week. The latest reason: {latest}")
    return found


@job
def alert_admins() -> int:
    """Email what is due to each clinic's admins, once a day per kind; how many sent."""
    day = datetime.now(timezone.utc).date().isoformat()
    sent = 0
    with database.session() as db:
        clinic_ids = list(db.scalars(select(Clinic.id).where(
            Clinic.id.in_(select(Admin.clinic_id).where(Admin.clinic_id.is_not(None))))))
    for clinic_id in clinic_ids:
        with database.session() as db:
            clinic = db.get(Clinic, clinic_id)
            alerts = due(db, clinic)
            recipients = list(db.scalars(select(Admin.email).where(Admin.clinic_id == clinic_id)))
            name, key = clinic.name, clinic.key
        for kind, detail in alerts.items():
            if not _claim(clinic_id, kind, day, detail):
                continue
            for address in recipients:
                try:
                    mail.send(_email(address, name, key, kind, detail))
                    sent += 1
                except mail.MailError as error:
                    log.warning("admin.alert-failed: clinic %s %s to an admin: %s",
                                clinic_id, kind, error)
            log.info("admin.alerted: clinic %s: %s", clinic_id, kind)
    return sent


def _claim(clinic_id: int, kind: str, day: str, detail: str) -> bool:
    """Take today's alert of this kind for the clinic; False when already taken."""
    try:
        with database.session() as db:
            db.add(AdminAlert(clinic_id=clinic_id, kind=kind, day=day, detail=detail[:2000]))
    except IntegrityError:
        return False
    return True


def _email(to: str, clinic_name: str, key: str, kind: str, detail: str) -> EmailMessage:
    subject = {"needs_reconnecting": f"{clinic_name} needs reconnecting to Rapport",
               "write_backs_failing": f"Rapport's notes for {clinic_name} are failing"}[kind]
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Auto-Submitted"] = "auto-generated"
    page = f"{current_app.config['BASE_URL']}/admin/clinics/{key}/health"
    message.set_content(f"{detail}\n\nSee the clinic's health page: {page}\n\n"
                        "You get at most one such email a day.\n")
    return message
