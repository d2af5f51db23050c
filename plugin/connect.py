"""``/connect/square/<clinic key>`` and its callback: a clinic admin connects Square."""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, request

from handlers.base import AdapterError
from plugin import clinics, storage
from plugin.square_install import (
    NONCE_COOKIE,
    STATE_MAX_AGE,
    ManualModeClinic,
    SquareInstallError,
    finish,
    start,
)

log = logging.getLogger(__name__)
bp = Blueprint("connect", __name__)


def _page(status: int, title: str, message: str, clinic_name: str | None = None):
    return render_template("connect/result.html", title=title, message=message,
                           clinic_name=clinic_name, language="en"), status


@bp.get("/connect/square/<clinic_key>")
def connect_square(clinic_key: str):
    with storage.session() as db:
        clinic = clinics.by_key(db, clinic_key)
        if clinic is None or clinic.platform != "square":
            return _page(404, "Unknown clinic", "There is no Square clinic with this link. "
                         "Check the link `rapport clinic list` printed.")
        try:
            url, nonce = start(clinic)
        except ManualModeClinic as error:
            return _page(409, "This clinic is connected by hand", str(error), clinic.name)
        except (SquareInstallError, AdapterError) as error:
            return _page(503, "Square is not set up", str(error), clinic.name)
    response = redirect(url)
    response.set_cookie(NONCE_COOKIE, nonce, max_age=STATE_MAX_AGE, httponly=True,
                        samesite="Lax", path="/connect/square",
                        secure=request.scheme == "https")
    return response


@bp.get("/connect/square/callback")
def square_callback():
    if request.args.get("error"):
        detail = request.args.get("error_description") or request.args["error"]
        return _page(400, "Square was not connected",
                     f"Square said: {detail}. Nothing was changed; you can open the connect "
                     "link again whenever you are ready.")
    code, state = request.args.get("code"), request.args.get("state")
    if not code or not state:
        return _page(400, "Square was not connected",
                     "The link from Square is incomplete; open the connect link again.")
    try:
        clinic = finish(code=code, state=state, nonce=request.cookies.get(NONCE_COOKIE))
    except ManualModeClinic as error:
        return _page(409, "This clinic is connected by hand", str(error))
    except SquareInstallError as error:
        return _page(400, "Square was not connected", str(error))
    except AdapterError as error:
        log.warning("connect.square-failed: %s", error)
        return _page(502, "Square was not connected",
                     f"Square did not complete the connection ({error}). Try again in a "
                     "few minutes.")
    response = _page(200, "Square is connected",
                     "Rapport will now follow this clinic's bookings. After each completed "
                     "visit the client gets a one-minute check-in, and the answers appear on "
                     "the client's Square profile, in the note and in the “Rapport alliance” "
                     "field. Send yourself a test with `rapport clinic send-test`.",
                     clinic.name)
    return response
