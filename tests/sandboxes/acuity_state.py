"""Acuity's records and the behaviour of the endpoints Rapport uses, without HTTP.

:class:`tests.sandboxes.acuity.AcuitySandbox` serves this over HTTP. Appointments look like
the specification's ``Appointment`` (shared/platforms/acuity/swagger.json) and Acuity's
reference examples; a cancelled appointment can be marked a no-show but never un-cancelled
(https://developers.acuityscheduling.com/reference/put-appointments-id-cancel); clients are
found by ``search`` as Acuity's client list searches (two words: first name, then last name;
https://help.acuityscheduling.com/hc/en-us/articles/16676896712589) and updated by name (and
phone); webhooks follow https://developers.acuityscheduling.com/page/webhooks-webhooks-webhooks
(25 per account, target on port 443 or 80). Error answers have Acuity's shape
``{"status_code", "error", "message"}`` (https://developers.acuityscheduling.com/reference/api-errors);
error codes the reference does not list (for a refused webhook, say) are the stand-in's own.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from tests.sandboxes.openapi import contract

SPEC = "platforms/acuity/swagger.json"
WEBHOOK_EVENTS = ("appointment.scheduled", "appointment.rescheduled", "appointment.canceled",
                  "appointment.changed", "order.completed")
WEBHOOK_LIMIT = 25
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 429: "too_many_requests", 500: "internal_server_error",
         502: "bad_gateway", 503: "service_unavailable"}


class AcuityError(Exception):
    """An answer in Acuity's error shape."""

    def __init__(self, status: int, message: str, error: str | None = None):
        super().__init__(f"{status} {error or CODES.get(status, 'error')}: {message}")
        self.status = status
        self.body = {"status_code": status, "error": error or CODES.get(status, "error"),
                     "message": message}


class AcuityState:
    def __init__(self, *, user_id: str = "11145481", api_key: str | None = None,
                 timezone: str = "America/New_York", business: str = "Harbour Massage"):
        self.user_id = user_id
        self.api_key = api_key or secrets.token_hex(16)
        self.timezone = timezone
        self.business = business
        self.contract = contract(SPEC)
        self.appointments: dict[int, dict[str, Any]] = {}
        self.clients: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self._ids = {"appointment": 1100, "webhook": 0}
        self._lock = threading.RLock()

    # --- seeding and acting as the clinic ---------------------------------------------

    def seed_client(self, *, first_name: str = "Sam", last_name: str = "Rivera",
                    email: str = "sam@example.com", phone: str = "",
                    notes: str = "") -> dict[str, Any]:
        client = {"firstName": first_name, "lastName": last_name, "email": email,
                  "phone": phone, "notes": notes}
        with self._lock:
            self.clients.append(client)
            return copy.deepcopy(client)

    def seed_appointment(
        self, *, start: datetime | str, duration: int = 60, first_name: str = "Sam",
        last_name: str = "Rivera", email: str = "sam@example.com", phone: str = "",
        notes: str = "", service: str = "Deep tissue 60", appointment_type_id: int = 1,
        calendar: str = "Dana Ruiz", calendar_id: int = 27238, id: int | None = None,
        add_client: bool = True,
    ) -> dict[str, Any]:
        """An appointment booked now for ``start`` (the client joins the client list, as a
        booking adds them in Acuity, unless one with that name and address is there)."""
        with self._lock:
            if id is None:
                self._ids["appointment"] += 1
                id = self._ids["appointment"]
            created = datetime.now(UTC)
            appointment = {
                "id": id, "firstName": first_name, "lastName": last_name, "phone": phone,
                "email": email, "price": "95.00", "priceSold": "95.00", "paid": "no",
                "amountPaid": "0.00", "type": service, "appointmentTypeID": appointment_type_id,
                "addonIDs": [], "category": "", "duration": str(duration),
                "calendar": calendar, "calendarID": calendar_id, "canClientCancel": True,
                "canClientReschedule": True, "canceled": False, "location": "",
                "confirmationPage": "https://acuityscheduling.com/schedule.php?owner="
                f"{self.user_id}&id[]={secrets.token_hex(16)}&action=appt",
                "formsText": "", "notes": notes, "timezone": self.timezone,
                "calendarTimezone": self.timezone, "labels": [], "forms": [],
                "isVerified": False, "scheduledBy": "",
                **self._created(created),
            }
            self._set_start(appointment, start)
            self.appointments[id] = appointment
            if add_client and not any(_same(c["email"], email) and _same(c["firstName"], first_name)
                                       and _same(c["lastName"], last_name) for c in self.clients):
                self.seed_client(first_name=first_name, last_name=last_name, email=email,
                                 phone=phone)
            return copy.deepcopy(appointment)

    def put_appointment(self, data: dict[str, Any]) -> dict[str, Any]:
        """Keep ``data`` (a recorded answer, a fixture) as the appointment with its id."""
        with self._lock:
            self.appointments[int(data["id"])] = copy.deepcopy(data)
            return copy.deepcopy(data)

    def appointment(self, appointment_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.appointments[int(appointment_id)])

    def client(self, first_name: str, last_name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(next(c for c in self.clients if _same(c["firstName"], first_name)
                                      and _same(c["lastName"], last_name)))

    def cancel(self, appointment_id: int, *, no_show: bool = False) -> dict[str, Any]:
        with self._lock:
            appointment = self.appointments[int(appointment_id)]
            appointment["canceled"] = True
            appointment["noShow"] = no_show
            return copy.deepcopy(appointment)

    def mark_no_show(self, appointment_id: int, no_show: bool = True) -> dict[str, Any]:
        """Acuity: only a cancelled appointment has a ``noShow`` to change."""
        with self._lock:
            appointment = self.appointments[int(appointment_id)]
            if not appointment.get("canceled"):
                raise ValueError("Acuity marks a no-show while cancelling; cancel it first")
            appointment["noShow"] = no_show
            return copy.deepcopy(appointment)

    def reschedule(self, appointment_id: int, start: datetime | str) -> dict[str, Any]:
        with self._lock:
            appointment = self.appointments[int(appointment_id)]
            if appointment.get("canceled"):
                raise ValueError("Canceled appointments may not be rescheduled.")
            self._set_start(appointment, start)
            return copy.deepcopy(appointment)

    def edit_notes(self, appointment_id: int, notes: str) -> None:
        """The therapist edits the appointment's notes in Acuity."""
        with self._lock:
            self.appointments[int(appointment_id)]["notes"] = notes

    def add_webhook(self, event: str, target: str) -> dict[str, Any]:
        """A webhook someone else registered in the account (another integration)."""
        with self._lock:
            return self._create_webhook(body={"event": event, "target": target})

    def rotate_api_key(self) -> str:
        """The admin regenerates the API key: the old one stops opening the API."""
        with self._lock:
            self.api_key = secrets.token_hex(16)
            return self.api_key

    # --- endpoints (called with the lock held) ----------------------------------------

    def _me(self, **_: Any) -> Any:
        return {"id": int(self.user_id), "email": "owner@harbour.example",
                "timezone": self.timezone, "firstDayOfWeek": 0, "timeFormat": "ampm",
                "currency": "USD", "schedulingPage": "https://harbour.as.me/",
                "plan": "Powerhouse", "name": self.business, "description": ""}

    def _get_appointment(self, *, appointmentId: str, **_: Any) -> Any:  # noqa: N803
        return copy.deepcopy(self._find(appointmentId))

    def _update_appointment(self, *, appointmentId: str, args: dict, body: dict,  # noqa: N803
                            **_: Any) -> Any:
        appointment = self._find(appointmentId)
        if "notes" in body and args.get("admin") != "true":
            raise AcuityError(400, 'The "notes" field may only be set by admins (admin=true).',
                              "not_admin")
        for name in ("firstName", "lastName"):
            if name in body and not str(body[name]).strip():
                raise AcuityError(400, f'Can not clear the field "{name}".', "invalid_name")
        for name in ("firstName", "lastName", "phone", "email", "notes", "certificate"):
            if name in body:
                appointment[name] = body[name]
        return copy.deepcopy(appointment)

    def _list_clients(self, *, args: dict, **_: Any) -> Any:
        search = (args.get("search") or "").strip()
        return [copy.deepcopy(c) for c in self.clients if _matches(c, search)]

    def _update_client(self, *, args: dict, body: dict, **_: Any) -> Any:
        first, last, phone = args.get("firstName"), args.get("lastName"), args.get("phone")
        if not first or not last:
            raise AcuityError(400, "firstName and lastName are required to find the client.",
                              "required_name")
        found = [c for c in self.clients if _same(c["firstName"], first)
                 and _same(c["lastName"], last) and (phone is None or c["phone"] == phone)]
        if not found:
            raise AcuityError(400, "Client does not exist", "client_not_found")
        found[0].update({k: v for k, v in body.items() if k in found[0]})
        return copy.deepcopy(found[0])

    def _list_webhooks(self, **_: Any) -> Any:
        return copy.deepcopy(self.webhooks)

    def _create_webhook(self, *, body: Any, **_: Any) -> Any:
        if not isinstance(body, dict):
            raise AcuityError(400, "Expected a JSON object.")
        if body.get("event") not in WEBHOOK_EVENTS:
            raise AcuityError(400, f"Invalid event {body.get('event')!r}.", "invalid_event")
        if set(body) - {"event", "target"}:
            raise AcuityError(400, f"Unknown fields {sorted(set(body) - {'event', 'target'})}.")
        target = body.get("target")
        parts = urlsplit(target if isinstance(target, str) else "")
        allowed = {"https": (None, 443), "http": (None, 80)}.get(parts.scheme, ())
        if not parts.hostname or parts.port not in allowed:
            raise AcuityError(400, "The target must be a URL on port 443 or 80.",
                              "invalid_target")
        if len(self.webhooks) >= WEBHOOK_LIMIT:
            raise AcuityError(400, f"A maximum of {WEBHOOK_LIMIT} webhooks can be created.",
                              "webhook_limit")
        self._ids["webhook"] += 1
        webhook = {"id": self._ids["webhook"], "event": body["event"], "target": target,
                   "status": "active"}
        self.webhooks.append(webhook)
        return copy.deepcopy(webhook)

    def _delete_webhook(self, *, id: str, **_: Any) -> Any:
        for webhook in self.webhooks:
            if str(webhook["id"]) == id:
                self.webhooks.remove(webhook)
                return {}
        raise AcuityError(404, f"Webhook {id} not found.", "not_found")

    def _find(self, appointment_id: str) -> dict[str, Any]:
        if not re.fullmatch(r"[0-9]+", appointment_id):
            raise AcuityError(404, "Not Found. Did you mean `/appointments/{id:number}`?")
        appointment = self.appointments.get(int(appointment_id))
        if appointment is None:
            raise AcuityError(404, f"Appointment {appointment_id} not found.", "not_found")
        return appointment

    # --- times as Acuity writes them ---------------------------------------------------

    def _set_start(self, appointment: dict[str, Any], start: datetime | str) -> None:
        when = datetime.fromisoformat(start.replace("Z", "+00:00")) if isinstance(start, str) \
            else start
        local = when.astimezone(ZoneInfo(self.timezone))
        end = local + timedelta(minutes=int(appointment["duration"]))
        appointment.update(datetime=local.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           date=_day(local), time=_clock(local), endTime=_clock(end))

    def _created(self, when: datetime) -> dict[str, str]:
        local = when.astimezone(ZoneInfo(self.timezone))
        return {"dateCreated": _day(local),
                "datetimeCreated": local.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _day(when: datetime) -> str:
    return f"{when:%B} {when.day}, {when.year}"


def _clock(when: datetime) -> str:
    hour = when.hour % 12 or 12
    return f"{hour}:{when:%M}{'am' if when.hour < 12 else 'pm'}"


def _same(a: Any, b: Any) -> bool:
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    return a.strip().casefold() == b.strip().casefold()


def _matches(client: dict[str, Any], search: str) -> bool:
    """Acuity's client search: no words, everyone; two or more, the first is a first name
    and the rest a last name; one, a first or last name, part of the e-mail address, or
    (two digits or more) part of the phone number."""
    if not search:
        return True
    words = search.split()
    if len(words) > 1:
        return _same(client["firstName"], words[0]) and _same(client["lastName"],
                                                              " ".join(words[1:]))
    word = words[0].casefold()
    digits = re.sub(r"\D", "", client.get("phone") or "")
    return (client["firstName"].casefold().startswith(word)
            or client["lastName"].casefold().startswith(word)
            or word in (client.get("email") or "").casefold()
            or (word.isdigit() and len(word) >= 2 and word in digits))
