"""The people who sign in to the console: clinic admins and operators.

An admin belongs to one clinic; an operator sees every clinic. Nobody has a password:
``rapport admin invite`` emails a link, and later the sign-in page emails another
(:func:`email_sign_in_link`, a job, so that the page answers alike, and as fast,
whether or not the address is an admin's). A link is single use, short-lived, and only
its token's SHA-256 is stored; so is a session's. A session ends on sign-out, after
``ADMIN_IDLE_MINUTES`` without a request, ``ADMIN_SESSION_HOURS`` after signing in, or
when its admin is removed (the rows go with the admin).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from urllib.parse import urlencode

from flask import current_app
from marshmallow import ValidationError, validate
from sqlalchemy import select, update

from plugin.pipeline import mail
from plugin.store import database
from plugin.store.models import Admin, AdminSession, Clinic, SignInLink
from plugin.tasks.queue import enqueue
from plugin.tasks.runtime import job

log = logging.getLogger(__name__)

class AdminError(ValueError):
    """The admin cannot be invited or removed as asked; the message says why."""


def setting(name: str) -> float:
    """One of the console's ``ADMIN_*`` settings (``plugin.config``)."""
    return float(current_app.config[name])


def now() -> datetime:
    return datetime.now(timezone.utc)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalized(email: str) -> str:
    """The address as stored and compared: trimmed, lower case, and a real address."""
    address = (email or "").strip().lower()
    try:
        validate.Email()(address)
    except ValidationError:
        raise AdminError(f"{email!r} is not an email address") from None
    return address


def sign_in_url(token: str, next_path: str | None = None) -> str:
    url = f"{current_app.config['BASE_URL']}/admin/sign-in/{token}"
    return f"{url}?{urlencode({'next': next_path})}" if next_path else url


# --- accounts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Invited:
    email: str
    clinic_name: str | None
    url: str


def invite(email: str, *, clinic_key: str | None, operator: bool = False,
           send: bool = True) -> Invited:
    """Make ``email`` an admin of the clinic ``clinic_key`` (or an operator) and email a
    sign-in link; inviting an admin again sends a fresh link."""
    if bool(clinic_key) == bool(operator):
        raise AdminError("give either a clinic (--clinic KEY) or --operator")
    address = normalized(email)
    with database.session() as db:
        clinic = None
        if clinic_key:
            clinic = db.scalar(select(Clinic).where(Clinic.key == clinic_key))
            if clinic is None:
                raise AdminError(f"no clinic with key {clinic_key!r}; "
                                 "`rapport clinic list` shows them")
        admin = db.scalar(select(Admin).where(Admin.email == address))
        if admin is None:
            admin = Admin(email=address, clinic_id=clinic.id if clinic else None,
                          operator=operator)
            db.add(admin)
            db.flush()
        elif admin.operator != operator or (clinic and admin.clinic_id != clinic.id):
            raise AdminError(f"{address} is already {describe(admin)}; remove them first "
                             f"(rapport admin remove {address})")
        token = _new_link(db, admin, timedelta(hours=setting("ADMIN_INVITE_HOURS")))
        clinic_name = clinic.name if clinic else None
    url = sign_in_url(token)
    if send:
        mail.send(_link_email(address, url, clinic_name, invitation=True))
    log.info("admin.invited: %s (%s)", address, clinic_key or "operator")
    return Invited(email=address, clinic_name=clinic_name, url=url)


def describe(admin: Admin) -> str:
    return "an operator" if admin.operator else f"an admin of {admin.clinic.name}"


def listing() -> list[dict]:
    with database.session() as db:
        return [{"email": admin.email, "operator": admin.operator,
                 "clinic": admin.clinic.key if admin.clinic else None,
                 "clinic_name": admin.clinic.name if admin.clinic else None,
                 "last_sign_in_at": admin.last_sign_in_at}
                for admin in db.scalars(select(Admin).order_by(Admin.email))]


def remove(email: str) -> int:
    """Remove the admin; their links and sessions go with them. How many sessions ended."""
    address = (email or "").strip().lower()
    with database.session() as db:
        admin = db.scalar(select(Admin).where(Admin.email == address))
        if admin is None:
            raise AdminError(f"no admin {address!r}; `rapport admin list` shows them")
        ended = len([s for s in db.scalars(select(AdminSession).where(
            AdminSession.admin_id == admin.id, AdminSession.ended_at.is_(None)))])
        db.delete(admin)
    log.info("admin.removed: %s, %s session(s) ended", address, ended)
    return ended


# --- sign-in links ----------------------------------------------------------------------


def _new_link(db, admin: Admin, lifetime: timedelta) -> str:
    token = secrets.token_urlsafe(32)
    db.add(SignInLink(admin_id=admin.id, token_hash=digest(token),
                      expires_at=now() + lifetime))
    return token


def queue_sign_in_link(email: str, next_path: str | None = None) -> bool:
    """Queue the sign-in email for ``email``, whoever it belongs to: the job, not the
    page, finds out whether it is an admin's."""
    address = (email or "").strip().lower()
    return enqueue(email_sign_in_link, address, next_path,
                   id_parts=(digest(address)[:16], secrets.token_hex(4)))


@job
def email_sign_in_link(email: str, next_path: str | None = None) -> bool:
    """Email a sign-in link to ``email`` if it is an admin's; True when one went."""
    with database.session() as db:
        admin = db.scalar(select(Admin).where(Admin.email == email))
        if admin is None:
            log.info("admin.sign-in-unknown: a link was asked for an address that is no "
                     "admin's")
            return False
        token = _new_link(db, admin, timedelta(minutes=setting("ADMIN_LINK_MINUTES")))
        clinic_name = admin.clinic.name if admin.clinic else None
    mail.send(_link_email(email, sign_in_url(token, next_path), clinic_name,
                          invitation=False))
    return True


def _link_email(to: str, url: str, clinic_name: str | None, *,
                invitation: bool) -> EmailMessage:
    where = f"{clinic_name}'s Rapport console" if clinic_name else "Rapport's console"
    if invitation:
        subject = f"You are invited to {where}"
        lifetime = f"{setting('ADMIN_INVITE_HOURS'):g} hours"
    else:
        subject = f"Your sign-in link for {where}"
        lifetime = f"{setting('ADMIN_LINK_MINUTES'):g} minutes"
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"Open this link to sign in to {where}:\n\n{url}\n\n"
        f"It works once, for the next {lifetime}. If you did not ask for it, ignore this "
        "email: nobody can sign in without opening the link.\n")
    return message


class LinkRefused(RuntimeError):
    """The link is unknown, used, expired, or its admin was removed."""


def use_link(token: str) -> tuple[int, str]:
    """Spend the link (once, atomically) and open a session for its admin: the admin's
    id and the new session's token."""
    moment = now()
    with database.session() as db:
        spent = db.execute(update(SignInLink).where(
            SignInLink.token_hash == digest(token), SignInLink.used_at.is_(None),
            SignInLink.expires_at > moment).values(used_at=moment)).rowcount
        link = db.scalar(select(SignInLink).where(SignInLink.token_hash == digest(token)))
        if spent != 1 or link is None:
            raise LinkRefused("unknown, used or expired link")
        admin = link.admin
        admin.last_sign_in_at = moment
        session_token = secrets.token_urlsafe(32)
        db.add(AdminSession(admin_id=admin.id, token_hash=digest(session_token),
                            created_at=moment, last_seen_at=moment))
        return admin.id, session_token


def link_is_usable(token: str) -> bool:
    with database.session() as db:
        return db.scalar(select(SignInLink.id).where(
            SignInLink.token_hash == digest(token), SignInLink.used_at.is_(None),
            SignInLink.expires_at > now())) is not None


# --- sessions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    """Who is signed in, as the pages need it."""

    admin_id: int
    session_id: int
    email: str
    operator: bool
    clinic_id: int | None

    def may_see(self, clinic_id: int) -> bool:
        return self.operator or self.clinic_id == clinic_id


def session_of(token: str | None) -> SignedIn | None:
    """The live session ``token`` names, kept alive; None when there is none (unknown,
    ended, idle too long, too old)."""
    if not token:
        return None
    moment = now()
    with database.session() as db:
        found = db.scalar(select(AdminSession).where(AdminSession.token_hash == digest(token)))
        if found is None or found.ended_at is not None:
            return None
        idle = moment - found.last_seen_at > timedelta(minutes=setting("ADMIN_IDLE_MINUTES"))
        old = moment - found.created_at > timedelta(hours=setting("ADMIN_SESSION_HOURS"))
        if idle or old:
            found.ended_at = moment
            log.info("admin.session-expired: admin %s (%s)", found.admin_id,
                     "idle" if idle else "too old")
            return None
        if moment - found.last_seen_at > timedelta(seconds=30):
            found.last_seen_at = moment  # not on every request: one write a half-minute
        admin = found.admin
        return SignedIn(admin_id=admin.id, session_id=found.id, email=admin.email,
                        operator=admin.operator, clinic_id=admin.clinic_id)


def end_session(session_id: int) -> None:
    with database.session() as db:
        db.execute(update(AdminSession).where(AdminSession.id == session_id,
                                              AdminSession.ended_at.is_(None))
                   .values(ended_at=now()))


def clinics_of(signed_in: SignedIn) -> list[Clinic]:
    with database.session() as db:
        query = select(Clinic).order_by(Clinic.name)
        if not signed_in.operator:
            query = query.where(Clinic.id == signed_in.clinic_id)
        return list(db.scalars(query))
