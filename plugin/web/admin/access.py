"""Who may see what in the console.

The session's token travels in its own cookie (``rapport_admin``: HttpOnly, SameSite=Lax,
``Secure`` when the base URL is https, like Flask's own session cookie) and is checked
against the server's record on every request (:func:`plugin.clinics.admins.session_of`).
A page about a clinic is found by the clinic's key in its URL and shown only to that
clinic's admins and to operators: anyone else gets the same 404 as for a clinic that
does not exist, and the attempt is logged.
"""

from __future__ import annotations

import functools
import logging
from urllib.parse import urlparse

from flask import abort, current_app, g, redirect, request, url_for
from sqlalchemy import select

from plugin.clinics import admins
from plugin.store import database
from plugin.store.models import Clinic

log = logging.getLogger(__name__)

COOKIE = "rapport_admin"


def current() -> admins.SignedIn | None:
    """The signed-in admin of this request, read once."""
    if "admin" not in g:
        token = request.cookies.get(COOKIE)
        g.admin = admins.session_of(token)
        if token and g.admin is None:
            log.info("admin.session-refused: %s %s from %s (unknown, ended or expired)",
                     request.method, request.path, request.remote_addr)
    return g.admin


def set_cookie(response, token: str):
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", path="/",
                        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]))
    return response


def clear_cookie(response):
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax",
                           secure=bool(current_app.config["SESSION_COOKIE_SECURE"]))
    return response


def safe_next(target: str | None) -> str | None:
    """A path on this site to go back to after signing in; nothing that leaves it."""
    if not target:
        return None
    parts = urlparse(target)
    # "/\\host" is "//host" to a browser: another site.
    if (parts.scheme or parts.netloc or not target.startswith("/")
            or target.startswith(("//", "/\\")) or any(ord(c) < 32 for c in target)):
        return None
    return target


def to_sign_in():
    wanted = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("admin_sign_in.form", next=wanted))


def signed_in(view):
    """The view needs someone signed in; it gets them as ``who``."""

    @functools.wraps(view)
    def run(*args, **kwargs):
        who = current()
        if who is None:
            return to_sign_in()
        return view(*args, who=who, **kwargs)

    return run


def clinic_page(view):
    """A page about the clinic ``key`` in its URL: the view gets ``who`` and ``clinic``
    (read in a session of its own), or the visitor gets 404."""

    @functools.wraps(view)
    def run(key: str, *args, **kwargs):
        who = current()
        if who is None:
            return to_sign_in()
        clinic = visible_clinic(who, key)
        return view(*args, who=who, clinic=clinic, **kwargs)

    return run


def visible_clinic(who: admins.SignedIn, key: str) -> Clinic:
    with database.session() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.key == key))
        if clinic is None or not who.may_see(clinic.id):
            log.warning("admin.other-clinic: admin %s asked %s %s", who.admin_id,
                        request.method, request.path)
            abort(404)
        return clinic
