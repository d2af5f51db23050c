"""Signing in and out of the console, and its front page.

``/admin/sign-in`` asks for an address and always answers the same ("if it is an
admin's, a link is on its way"); the link is emailed by a job. Opening the link shows a
button rather than signing in at once: mail scanners open links too, and a single-use
link spent by a scanner would leave the admin locked out. A refused link (unknown,
used, expired, its admin removed) is logged and says how to get a new one.
"""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, request, url_for
from marshmallow import ValidationError, validate

from plugin.clinics import admins
from plugin.web.admin import access, limits

log = logging.getLogger(__name__)
bp = Blueprint("admin_sign_in", __name__, url_prefix="/admin")


def _form(status: int = 200, **context):
    return render_template("admin/sign_in.html", title="Sign in", **context), status


@bp.get("/sign-in")
def form():
    if access.current() is not None:
        return redirect(access.safe_next(request.args.get("next")) or url_for(".home"))
    return _form(next=access.safe_next(request.args.get("next")))


@bp.post("/sign-in")
def ask_for_link():
    address = (request.form.get("email") or "").strip()
    next_path = access.safe_next(request.form.get("next"))
    try:
        validate.Email()(address)
    except ValidationError:
        return _form(400, email=address, next=next_path,
                     error="Give your email address, e.g. you@clinic.example.")
    if not limits.allowed(address, request.remote_addr or ""):
        log.warning("admin.sign-in-limited: from %s", request.remote_addr)
        return render_template(
            "admin/message.html", title="Too many sign-in links asked for",
            message="Too many links were asked for this address or from this network in "
                    "the last hour. Use the latest link you received, or try again in an "
                    "hour."), 429
    admins.queue_sign_in_link(address, next_path)
    return render_template("admin/sign_in_sent.html", title="Check your email",
                           email=address)


def _refused(token: str):
    log.warning("admin.link-refused: from %s (unknown, used, expired or its admin "
                "removed)", request.remote_addr)
    return render_template(
        "admin/message.html", title="This sign-in link no longer works",
        message="It was already used, has expired, or was never valid. Ask for a new one "
                "below.", sign_in=True), 410


@bp.get("/sign-in/<token>")
def link(token: str):
    if not admins.link_is_usable(token):
        return _refused(token)
    return render_template("admin/link.html", title="Sign in to Rapport", token=token,
                           next=access.safe_next(request.args.get("next")))


@bp.post("/sign-in/<token>")
def use_link(token: str):
    try:
        admin_id, session_token = admins.use_link(token)
    except admins.LinkRefused:
        return _refused(token)
    log.info("admin.signed-in: admin %s from %s", admin_id, request.remote_addr)
    target = access.safe_next(request.form.get("next")) or url_for(".home")
    return access.set_cookie(redirect(target, 303), session_token)


@bp.post("/sign-out")
def sign_out():
    who = access.current()
    if who is not None:
        admins.end_session(who.session_id)
        log.info("admin.signed-out: admin %s", who.admin_id)
    response = redirect(url_for(".form", signed_out=1), 303)
    return access.clear_cookie(response)


@bp.get("/")
@access.signed_in
def home(who: admins.SignedIn):
    clinics = admins.clinics_of(who)
    if not who.operator and len(clinics) == 1:
        return redirect(url_for("admin_clinic.page", key=clinics[0].key))
    return render_template("admin/clinics.html", title="Clinics", who=who, clinics=clinics)
