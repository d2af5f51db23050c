"""The clinic's settings as a form: what ``rapport clinic configure`` changes, with the
same checks and messages (``plugin.clinics.settings``, ``plugin.clinics.records``).

Each value is checked on its own first, so a message stands next to the field it is
about; then together. Nothing is kept unless every value passes. A new delay, window or
time zone moves the check-ins still waiting to be sent, as the command does. The
callback URL is not here: it is changed with its own checks elsewhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, render_template, request

from plugin.clinics import admins, records, settings
from plugin.i18n import supported_languages
from plugin.pipeline import instruments, sending
from plugin.store import database
from plugin.store.models import Clinic
from plugin.web.admin import access

log = logging.getLogger(__name__)
bp = Blueprint("admin_settings", __name__, url_prefix="/admin/clinics/<key>")

SEND_TIMING = frozenset({"send_delay_minutes", "window_start", "window_end"})


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text, int, float, clock, email, timezone, language, instrument
    hint: str = ""


SECTIONS = (
    ("The clinic", (
        Field("name", "Clinic name", hint="As clients read it in their emails."),
        Field("timezone", "Time zone", "timezone", "An IANA name, e.g. Europe/London."),
        Field("language", "Language of the therapist's note", "language"),
    )),
    ("Check-in emails", (
        Field("sender_name", "Sender's name",
              hint="Shown as the sender of check-in emails (empty: the installation's)."),
        Field("reply_to", "Reply-to address", "email",
              hint="Where a client's reply goes (empty: no Reply-To)."),
        Field("contact", "How clients reach you",
              hint="One line, shown to a client whose link has closed or who unsubscribed, "
                   "e.g. \"Call us on 020 7946 0000\"."),
    )),
    ("When check-ins go out", (
        Field("send_delay_minutes", "Send after the visit ends (minutes)", "int",
              "Default 180."),
        Field("window_start", "Sending window opens", "clock", "In the clinic's time zone."),
        Field("window_end", "Sending window closes", "clock", "24:00 is the end of the day."),
        Field("reminder_after_hours", "One reminder after (hours)", "float", "Default 48."),
        Field("expire_after_days", "The link closes after (days)", "float", "Default 7."),
        Field("quiet_days", "Quiet days after an answer", "int",
              "No new check-in this long after one was answered. Default 14."),
        Field("completion_grace_minutes", "Wait after the end before asking whether a visit "
              "happened (minutes)", "int", "Platforms without a 'completed' status. "
              "Default 15."),
    )),
    ("Questionnaire", (
        Field("early_instrument", "For a client's first visits with a therapist", "instrument"),
        Field("early_visits", "How many visits count as first visits", "int", "Default 3."),
        Field("later_instrument", "After those visits", "instrument"),
    )),
    ("Flags", (
        Field("drop_threshold", "A drop that flags (points below the client's baseline)",
              "float", "0–100. Default 10."),
        Field("low_subscale_threshold", "A part that flags when under", "float",
              "0–100. Default 60."),
    )),
)
FIELDS = {field.name: field for _, fields in SECTIONS for field in fields}
TIMING = ("send_delay_minutes", "window_start", "window_end", "reminder_after_hours",
          "expire_after_days", "quiet_days", "completion_grace_minutes")
FLAGS = ("drop_threshold", "low_subscale_threshold")


class Refused(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("refused")
        self.errors = errors


def current_values(clinic: Clinic) -> dict[str, str]:
    shown = settings.effective(clinic.settings)
    policy = shown["instrument"]
    values = {"name": clinic.name, "timezone": clinic.timezone, "language": clinic.language,
              "sender_name": shown["sender"]["name"] or "",
              "reply_to": shown["sender"]["reply_to"] or "",
              "contact": shown["sender"]["contact"] or "",
              "early_instrument": policy["early"], "early_visits": policy["early_visits"],
              "later_instrument": policy["later"], **shown["timing"], **shown["flags"]}
    return {name: _text(values[name]) for name in FIELDS}


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _number(field: Field, text: str):
    try:
        return int(text) if field.kind == "int" else float(text)
    except ValueError:
        raise settings.SettingsError(
            "give a whole number" if field.kind == "int" else "give a number") from None


def apply(clinic_id: int, form: dict[str, str]) -> tuple[bool, int | None]:
    """Check and keep the form's values; raises :class:`Refused` with a message per field.
    Whether the check-in times moved, and how many waiting check-ins were re-planned."""
    errors: dict[str, str] = {}
    parsed: dict[str, object] = {}
    for name, field in FIELDS.items():
        text = (form.get(name) or "").strip()
        if field.kind in ("int", "float"):
            if not text:
                errors[name] = "Give a value."
                continue
            try:
                parsed[name] = _number(field, text)
            except settings.SettingsError as error:
                errors[name] = _sentence(str(error))
        else:
            parsed[name] = text
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        before = current_values(clinic)
        _keep(clinic, parsed, errors)
        if errors:
            raise Refused(errors)  # leaving the block this way keeps nothing
        after = current_values(clinic)
    retimed = any(before[name] != after[name] for name in (*SEND_TIMING, "timezone"))
    replanned = sending.replan_pending(clinic_id) if retimed else None
    return retimed, replanned


def _keep(clinic: Clinic, parsed: dict, errors: dict[str, str]) -> None:
    def attempt(names: tuple[str, ...], change) -> None:
        if any(name in errors or name not in parsed for name in names):
            return
        try:
            change()
        except (settings.SettingsError, records.ClinicError) as error:
            errors[_blamed(names, str(error), parsed)] = _sentence(str(error))

    attempt(("name",), lambda: records.rename(clinic, parsed["name"]))
    for name in ("timezone", "language"):
        if parsed.get(name) and parsed[name] != getattr(clinic, name):
            attempt((name,), lambda name=name: records.set_locale(clinic, **{name: parsed[name]}))
    for name in TIMING:
        # Each end of the window is checked as a time of day here, and against the other
        # end below (where the message goes to the window's end).
        alone = {"window_start": {"window_end": "24:00"},
                 "window_end": {"window_start": "00:00"}}.get(name, {})
        attempt((name,), lambda name=name, alone=alone: settings.updated(
            clinic.settings, timing={name: parsed[name], **alone}))
    attempt(TIMING, lambda: setattr(clinic, "settings", settings.updated(
        clinic.settings, timing={name: parsed[name] for name in TIMING})))
    if isinstance(parsed.get("early_visits"), int) and parsed["early_visits"] < 0:
        errors["early_visits"] = "Give a whole number, 0 or more."
    policy = ("early_instrument", "early_visits", "later_instrument")
    attempt(policy, lambda: setattr(clinic, "settings", settings.updated(
        clinic.settings, instrument={"early": parsed["early_instrument"],
                                     "early_visits": parsed["early_visits"],
                                     "later": parsed["later_instrument"]})))
    for name in FLAGS:
        attempt((name,), lambda name=name: settings.updated(
            clinic.settings, flags={name: parsed[name]}))
    attempt(FLAGS, lambda: setattr(clinic, "settings", settings.updated(
        clinic.settings, flags={name: parsed[name] for name in FLAGS})))
    attempt(("sender_name",), lambda: settings.checked_sender(parsed["sender_name"], None))
    attempt(("reply_to",), lambda: settings.checked_sender(None, parsed["reply_to"]))
    attempt(("contact",), lambda: settings.checked_sender(None, None, parsed["contact"]))
    attempt(("sender_name", "reply_to", "contact"), lambda: setattr(
        clinic, "settings", settings.updated(
            clinic.settings, sender={"name": parsed["sender_name"],
                                     "reply_to": parsed["reply_to"],
                                     "contact": parsed["contact"]})))


def _blamed(names: tuple[str, ...], message: str, parsed: dict) -> str:
    """The field a message is about, among those checked together."""
    for name in names:
        value = parsed.get(name)
        if len(names) == 1 or (isinstance(value, str) and value and repr(value) in message):
            return name
    return "window_end" if "window" in message else names[0]


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _page(who, clinic: Clinic, values: dict, status: int = 200, **context):
    return render_template(
        "admin/settings.html", title=f"Settings · {clinic.name}", who=who, clinic=clinic,
        tab="settings", sections=SECTIONS, values=values,
        languages=supported_languages(),
        instruments=sorted(i.id for i in instruments.registry().all()), **context), status


@bp.get("/settings")
@access.clinic_page
def page(who: admins.SignedIn, clinic: Clinic):
    return _page(who, clinic, current_values(clinic))


@bp.post("/settings")
@access.clinic_page
def save(who: admins.SignedIn, clinic: Clinic):
    form = {name: request.form.get(name, "") for name in FIELDS}
    try:
        _retimed, replanned = apply(clinic.id, form)
    except Refused as refused:
        return _page(who, clinic, form, 400, errors=refused.errors)
    log.info("admin.settings-changed: clinic %s by admin %s", clinic.id, who.admin_id)
    clinic = access.visible_clinic(who, clinic.key)
    values = current_values(clinic)
    timing = settings.effective(clinic.settings)["timing"]
    notes = ["Saved."]
    if replanned:
        notes.append(f"{replanned} waiting check-in(s) moved to the new timing.")
    if timing["reminder_after_hours"] >= timing["expire_after_days"] * 24:
        notes.append(f"No reminder goes out: at {timing['reminder_after_hours']:g} hours it "
                     f"would come after the link closes ({timing['expire_after_days']:g} days).")
    return _page(who, clinic, values, done=" ".join(notes))
