"""A clinic's page: its connection to the booking platform, and what changes it.

What is offered is what the platform declares (``capabilities.connections``) for how
this clinic is connected (``connection_of``): a Connect/Reconnect button for a
platform's own sign-in (``/connect/<platform>/<key>``, :mod:`plugin.web.connect`), a form
of the platform's ``update_fields`` for keys the admin gives, or the webhook URL and its
secrets (revealed on request, rotated by a button) for a clinic whose own system signs
its webhooks; and "Send a test event" where the platform declares ``test_event``, or why
not for this clinic. Every change goes through the seam (``plugin.clinics.connecting``,
``plugin.clinics.subscriptions`` for the test event).
"""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, request

from handlers.base import Connection, NotePlace, Webhooks
from plugin.clinics import admins, callbacks, connecting, health, records, subscriptions
from plugin.clinics.oauth import connect_url
from plugin.clinics.platforms import platform_of
from plugin.pipeline import write_back
from plugin.store.models import Clinic
from plugin.web.admin import access

log = logging.getLogger(__name__)
bp = Blueprint("admin_clinic", __name__, url_prefix="/admin/clinics/<key>")

STATES = {"active": "Connected", "needs_reconnecting": "Needs reconnecting",
          "not_connected": "Not connected yet"}


def connection_view(clinic: Clinic) -> dict:
    """What the page shows about how the clinic is connected."""
    platform = platform_of(clinic)
    values = records.credentials(clinic)
    connection = platform.connection_of(values)
    view = {"platform": platform, "connection": connection.value,
            "state": STATES.get(clinic.status, clinic.status.replace("_", " ").capitalize()),
            "status": clinic.status, "detail": clinic.status_detail, "shown": [],
            "secrets": [], "fields": [], "webhook_url": None, "connect_url": None,
            "callback": None, "test_event": None}
    if clinic.status != "active":
        view["remedy"] = health.remedy(clinic).get("remedy")
    if platform.webhooks_of(values) is Webhooks.PER_CLINIC:
        view["webhook_url"] = records.webhook_url(clinic)
    if connection is Connection.OAUTH:
        view["connect_url"] = connect_url(clinic)
    elif connection is Connection.SHARED_SECRET:
        view["secrets"] = list(values.get("inbound_secrets", []))
    keys = Connection.API_KEY in platform.capabilities.connections
    if connection is not Connection.OAUTH and keys:
        view["fields"] = list(platform.update_fields)
    if NotePlace.CALLBACK in platform.capabilities.note_places:
        view["callback"] = {"url": platform.callback_url(values) or "",
                            "secrets": [values.get("outbound_secret"),
                                        *(values.get("previous_outbound_secrets") or ())]}
    if platform.capabilities.test_event:
        view["test_event"] = {"refusal": subscriptions.why_no_test_event(clinic)}
    # What the platform lists for the admin to copy, besides what is shown above.
    above = {*view["secrets"], view["webhook_url"],
             *((view["callback"] or {}).get("secrets") or ()),
             (view["callback"] or {}).get("url")}
    view["shown"] = [item for item in platform.shown(values) if item.value not in above]
    return view


def _page(who, clinic, status: int = 200, **context):
    return render_template("admin/clinic.html", title=clinic.name, who=who, clinic=clinic,
                           tab="clinic", view=connection_view(clinic), **context), status


@bp.get("/")
@access.clinic_page
def page(who: admins.SignedIn, clinic: Clinic):
    return _page(who, clinic)


@bp.post("/secrets")
@access.clinic_page
def rotate(who: admins.SignedIn, clinic: Clinic):
    retire = request.form.get("action") == "retire"
    try:
        secret = connecting.rotate_secret(clinic.key, retire_old=retire)
    except connecting.InstallError as error:
        return _page(who, clinic, 400, problem=str(error))
    log.info("admin.secret-%s: clinic %s by admin %s", "retired" if retire else "rotated",
             clinic.id, who.admin_id)
    clinic = access.visible_clinic(who, clinic.key)
    if retire:
        return _page(who, clinic, done="Only the newest webhook secret is accepted now.")
    return _page(who, clinic, new_secret=secret,
                 done="A new webhook secret was made. The old one keeps working until you "
                      "retire it, once your booking system signs with the new one.")


@bp.post("/credentials")
@access.clinic_page
def credentials(who: admins.SignedIn, clinic: Clinic):
    platform = platform_of(clinic)
    given = {}
    for field in platform.update_fields:
        value = request.form.get(field.name)
        given[field.name] = bool(value) if field.flag else ((value or "").strip() or None)
    if not any(given.values()):
        first = platform.update_fields[0].name if platform.update_fields else None
        return _page(who, clinic, 400, errors={first: "Give at least one new value."})
    try:
        updated = connecting.update_credentials(clinic.key, platform.name, given)
    except connecting.InstallError as error:
        named = next((name for name, value in given.items() if value), None)
        return _page(who, clinic, 400, errors={named: str(error)})
    resumed = write_back.resume(updated.clinic_id) if updated.reconnected else 0
    log.info("admin.credentials-changed: clinic %s by admin %s", clinic.id, who.admin_id)
    clinic = access.visible_clinic(who, clinic.key)
    return _page(who, clinic, done=f"Saved. {updated.summary}" + (
        f" Reconnected; {resumed} write-back(s) resumed." if updated.reconnected else ""))


@bp.post("/callback")
@access.clinic_page
def callback(who: admins.SignedIn, clinic: Clinic):
    """A new callback URL: checked like a new clinic's (a public https address)."""
    url = (request.form.get("callback_url") or "").strip()
    try:
        callbacks.change_url(clinic.key, url)
    except callbacks.CallbackError as error:
        return _page(who, clinic, 400, errors={"callback_url": str(error)},
                     callback_given=url)
    log.info("admin.callback-changed: clinic %s by admin %s", clinic.id, who.admin_id)
    clinic = access.visible_clinic(who, clinic.key)
    return _page(who, clinic, done="Saved: the scores and notes now go to the new URL.")


@bp.post("/callback-secrets")
@access.clinic_page
def rotate_callback(who: admins.SignedIn, clinic: Clinic):
    retire = request.form.get("action") == "retire"
    try:
        changed = callbacks.rotate_secret(clinic.key, retire_old=retire)
    except callbacks.CallbackError as error:
        return _page(who, clinic, 400, problem=str(error))
    log.info("admin.callback-secret-%s: clinic %s by admin %s",
             "retired" if retire else "rotated", clinic.id, who.admin_id)
    clinic = access.visible_clinic(who, clinic.key)
    if retire:
        return _page(who, clinic, done="Callbacks are now signed with the newest secret only.")
    return _page(who, clinic, new_callback_secret=changed.new_secret,
                 done="A new callback signing secret was made. Each callback is signed with it "
                      "and the older ones until you retire them, once your receiver checks "
                      "the new one.")


@bp.post("/test-event")
@access.clinic_page
def event_test(who: admins.SignedIn, clinic: Clinic):
    """The platform sends a sample event to Rapport now; the page says how it went."""
    try:
        result = subscriptions.send_test_event(clinic.id)
    except subscriptions.TestEventProblem as error:
        log.info("admin.test-event-refused: clinic %s by admin %s: %s", clinic.id,
                 who.admin_id, error)
        return _page(who, clinic, 400, problem=str(error))
    reached, message = subscriptions.describe_test_event(platform_of(clinic), result)
    log.info("admin.test-event: clinic %s by admin %s: %s %s", clinic.id, who.admin_id,
             result.status, result.detail)
    return _page(who, clinic, done=message) if reached else _page(who, clinic, problem=message)
