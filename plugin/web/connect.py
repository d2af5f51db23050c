"""``/connect/<platform>/<clinic key>`` and its callback: a clinic admin connects a
platform that has its own sign-in (``Connection.OAUTH``).

The connect link is the console's Connect button: only an admin of that clinic, or an
operator, signed in to the console, may open it (anyone else holding the link could
bind their own account to the clinic). Someone not signed in is sent to sign in first
and back here after; an admin of another clinic gets the same 404 as for no clinic."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

import handlers
from handlers.base import AdapterError, Connection, Platform
from plugin.clinics import oauth, records
from plugin.pipeline import write_back
from plugin.store import database
from plugin.web.admin import access

log = logging.getLogger(__name__)
bp = Blueprint("connect", __name__)


def _page(status: int, title: str, message: str, clinic_name: str | None = None,
          console_url: str | None = None):
    return render_template("connect/result.html", title=title, message=message,
                           clinic_name=clinic_name, language="en",
                           console_url=console_url), status


def _signed_in_platform(name: str) -> Platform:
    if name not in handlers.REGISTRY:
        abort(404)
    platform = handlers.platform(name)
    if Connection.OAUTH not in platform.capabilities.connections:
        abort(404)
    return platform


@bp.get("/connect/<platform_name>/callback")
def callback(platform_name: str):
    platform = _signed_in_platform(platform_name)
    failed = f"{platform.title} was not connected"
    if request.args.get("error"):
        detail = request.args.get("error_description") or request.args["error"]
        return _page(400, failed,
                     f"{platform.title} said: {detail}. Nothing was changed; you can open the "
                     "connect link again whenever you are ready.")
    code, state = request.args.get("code"), request.args.get("state")
    if not code or not state:
        return _page(400, failed, f"The link from {platform.title} is incomplete; open the "
                     "connect link again.")
    try:
        clinic = oauth.finish(platform.name, code=code, state=state,
                              nonce=request.cookies.get(oauth.nonce_cookie(platform)))
    except oauth.NotConnectedThisWay as error:
        return _page(409, "This clinic is connected by hand", str(error))
    except oauth.ConnectError as error:
        return _page(400, failed, str(error))
    except AdapterError as error:
        log.warning("connect.failed: %s: %s", platform.name, error)
        return _page(502, failed, f"{platform.title} did not complete the connection "
                     f"({error}). Try again in a few minutes.")
    write_back.resume(clinic.id)
    return _page(200, f"{platform.title} is connected",
                 f"{platform.connected_message} Send yourself a test from the clinic's page "
                 "in the console (or with `rapport clinic send-test`).", clinic.name,
                 console_url=url_for("admin_clinic.page", key=clinic.key))


@bp.get("/connect/<platform_name>/<clinic_key>")
def connect(platform_name: str, clinic_key: str):
    platform = _signed_in_platform(platform_name)
    who = access.current()
    if who is None:
        return access.to_sign_in()
    with database.session() as db:
        clinic = records.by_key(db, clinic_key)
        if clinic is not None and not who.may_see(clinic.id):
            log.warning("admin.other-clinic: admin %s opened the connect link of clinic %s",
                        who.admin_id, clinic.id)
            clinic = None
        if clinic is None or clinic.platform != platform.name:
            return _page(404, "Unknown clinic", f"There is no {platform.title} clinic with "
                         "this link. Check the link `rapport clinic list` printed.")
        try:
            url, nonce = oauth.start(clinic)
        except oauth.NotConnectedThisWay as error:
            return _page(409, "This clinic is connected by hand", str(error), clinic.name)
        except (oauth.ConnectError, AdapterError) as error:
            return _page(503, f"{platform.title} is not set up", str(error), clinic.name)
    response = redirect(url)
    response.set_cookie(oauth.nonce_cookie(platform), nonce, max_age=oauth.STATE_MAX_AGE,
                        httponly=True, samesite="Lax", path=f"/connect/{platform.name}",
                        secure=request.scheme == "https" or bool(
                            current_app.config["SESSION_COOKIE_SECURE"]))
    return response
