"""Cliniko's records and the behaviour of the endpoints Rapport uses, without HTTP.

:class:`tests.sandboxes.cliniko.ClinikoSandbox` serves this over HTTP. Written from
Cliniko's API reference (https://docs.api.cliniko.com/: "Pagination", "Filtering Results",
"Ordering"; https://docs.api.cliniko.com/openapi/reference/tag/Individual-Appointment and
.../tag/Patient; the GitHub predecessor https://github.com/redguava/cliniko-api for the
example records):

- lists are paged (``per_page`` 1–100, default 50; ``page``), answer ``total_entries`` and
  ``links`` (``self``, ``next`` only when there is a next page, ``previous``);
- ``q[]=field:op value`` filters, combined; date-times only as ``2014-08-30T18:00:00Z``;
  cancelled and archived appointments are left out of lists unless a filter names
  ``cancelled_at`` / ``archived_at`` (``*``: any value);
- ``sort=col[,col2][:desc]``, ``created_at`` ascending when not given;
- ids are int64, sent as strings (the current reference).

Choices where the reference is silent, so Rapport is tested against the harder case:
``updated_at`` is stored to the microsecond and shown to the second (truncated); records
sharing a sort value come in descending id order; an archived appointment is not found by
``GET /individual_appointments/{id}``; updates with fields Cliniko does not have are refused
(422). Times come from :class:`Clock`, which tests move (no sleeping).
"""

from __future__ import annotations

import copy
import itertools
import re
import secrets
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

DATETIME_FIELDS = frozenset({"created_at", "updated_at", "starts_at", "ends_at",
                             "cancelled_at", "archived_at", "deleted_at"})
INTEGER_FIELDS = frozenset({"id", "patient_id", "practitioner_id", "appointment_type_id",
                            "business_id", "repeated_from_id"})
BOOLEAN_FIELDS = frozenset({"did_not_arrive"})
OPERATORS = {  # documented per type ("Filtering Results")
    "datetime": {">=", ">", "<=", "<", "?", "!?", "*"},
    "integer": {"=", "!=", ">=", ">", "<=", "<", "?", "!?"},
    "boolean": {"=", "!="},
}
FILTER = re.compile(r"^(?P<field>[a-z_]+):(?P<op>>=|<=|!\?|!=|>|<|=|\?|\*)(?P<value>.*)$")
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PATIENT_FIELDS = frozenset({"notes", "appointment_notes", "first_name", "last_name", "email",
                            "time_zone", "title", "occupation"})
APPOINTMENT_FIELDS = frozenset({"notes", "starts_at", "ends_at", "patient_arrived",
                                "did_not_arrive", "practitioner_id", "appointment_type_id"})
FIRST_ID = 1_176_000_000_000_000_000  # int64 ids, as Cliniko's look today


class ClinikoError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 errors: dict[str, Any] | None = None):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.body = {"message": message, **({"errors": errors} if errors else {})}
        self.headers = headers or {}


class Clock:
    """The stand-in's time: starts at the real time, moves only when told."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


def stamp(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ClinikoState:
    def __init__(self, *, shard: str = "au1", clock: Clock | None = None,
                 rate_limit: int = 200):
        self.clock = clock or Clock()
        self.rate_limit = rate_limit
        # False: ``sort`` is ignored (what Rapport must notice rather than skip records).
        self.honours_sort = True
        self.accounts: dict[str, dict[str, Any]] = {}
        self.patients: dict[str, dict[str, Any]] = {}
        self.appointments: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(FIRST_ID + secrets.randbelow(10_000) * 1000)
        self._lock = threading.RLock()
        self.api_key = self.add_account(shard)
        self.shard = shard
        self.practitioner_id, self.appointment_type_id, self.business_id = (
            self._new_id(), self._new_id(), self._new_id())

    # --- accounts ------------------------------------------------------------------

    def add_account(self, shard: str) -> str:
        """A Cliniko user on ``shard``; their API key (with its shard suffix)."""
        body = "MS0x" + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")
        with self._lock:
            self.accounts[body] = {"shard": shard, "calls": [],
                                   "user": {"id": self._new_id(), "first_name": "Dana",
                                            "last_name": "Ruiz", "email": "dana@clinic.example",
                                            "role": "administrator", "user_active": True}}
        return f"{body}-{shard}"

    # --- seeding and acting as the clinic ----------------------------------------------

    def seed_patient(self, *, first_name: str = "Sam", last_name: str = "Rivers",
                     email: str | None = "sam@example.com", notes: str | None = "",
                     **extra: Any) -> dict[str, Any]:
        now = self.clock.now()
        record = {"id": self._new_id(), "created_at": now, "updated_at": now,
                  "first_name": first_name, "last_name": last_name, "email": email,
                  "notes": notes, "appointment_notes": "", "archived_at": None,
                  "deleted_at": None, "time_zone": "Europe/London", "title": "",
                  "occupation": "", "accepted_email_marketing": None,
                  "accepted_privacy_policy": None, "patient_phone_numbers": [], **extra}
        with self._lock:
            self.patients[record["id"]] = record
        return copy.deepcopy(record)

    def seed_appointment(self, *, patient: dict[str, Any] | None, starts_at: datetime,
                         minutes: int = 60, updated_at: datetime | None = None,
                         **fields: Any) -> dict[str, Any]:
        """One individual appointment; ``updated_at`` (and ``created_at``) default to now."""
        when = updated_at or self.clock.now()
        record = {
            "id": self._new_id(), "created_at": when, "updated_at": when,
            "starts_at": starts_at, "ends_at": starts_at + timedelta(minutes=minutes),
            "cancelled_at": None, "archived_at": None, "deleted_at": None,
            "cancellation_note": None, "cancellation_reason": None,
            "cancellation_reason_description": None, "did_not_arrive": False,
            "patient_arrived": False, "notes": None, "email_reminder_sent": False,
            "sms_reminder_sent": False, "invoice_status": None, "treatment_note_status": None,
            "online_booking_policy_accepted": None, "booking_ip_address": None,
            "has_patient_appointment_notes": False, "telehealth_url": None,
            "repeat_rule": {}, "repeats": None, "repeated_from_id": None,
            "patient_id": patient["id"] if patient else None,
            "patient_name": f"{patient['first_name']} {patient['last_name']}" if patient else None,
            "practitioner_id": self.practitioner_id,
            "appointment_type_id": self.appointment_type_id, "business_id": self.business_id,
            **fields,
        }
        with self._lock:
            self.appointments[record["id"]] = record
        return copy.deepcopy(record)

    def seed_appointments(self, count: int, *, patient: dict[str, Any] | None,
                          first_start: datetime, every: timedelta = timedelta(hours=1),
                          kind: str = "booked", **fields: Any) -> list[dict[str, Any]]:
        """``count`` appointments an ``every`` apart; ``kind``: ``booked``, ``cancelled``,
        ``did_not_arrive``, ``archived`` or ``arrived``."""
        made = []
        for n in range(count):
            made.append(self.seed_appointment(patient=patient, starts_at=first_start + n * every,
                                              **_kind(kind, self.clock.now()), **fields))
        return made

    def edit_appointment(self, appointment_id: str, **changes: Any) -> dict[str, Any]:
        """Change an appointment as the clinic would; ``updated_at`` becomes now."""
        with self._lock:
            record = self.appointments[appointment_id]
            if "starts_at" in changes and "ends_at" not in changes:
                length = record["ends_at"] - record["starts_at"]
                changes["ends_at"] = changes["starts_at"] + length
            record.update(changes, updated_at=self.clock.now())
            return copy.deepcopy(record)

    def cancel(self, appointment_id: str, reason: int = 50) -> dict[str, Any]:
        return self.edit_appointment(appointment_id, cancelled_at=self.clock.now(),
                                     cancellation_reason=reason,
                                     cancellation_reason_description="Other")

    def archive(self, appointment_id: str) -> dict[str, Any]:
        return self.edit_appointment(appointment_id, archived_at=self.clock.now())

    def mark_did_not_arrive(self, appointment_id: str) -> dict[str, Any]:
        return self.edit_appointment(appointment_id, did_not_arrive=True)

    def edit_patient(self, patient_id: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            record = self.patients[patient_id]
            record.update(changes, updated_at=self.clock.now())
            return copy.deepcopy(record)

    def patient(self, patient_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.patients[patient_id])

    def appointment(self, appointment_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.appointments[appointment_id])

    # --- what the endpoints do -------------------------------------------------------

    def list_appointments(self, query: list[str], sort: str | None, order: str | None,
                          page: int, per_page: int) -> tuple[list[dict[str, Any]], int, bool]:
        tests = [_filter(text) for text in query]
        named = {field for field, _op, _value in tests}
        with self._lock:
            rows = [copy.deepcopy(r) for r in self.appointments.values()
                    if r["deleted_at"] is None
                    and (r["cancelled_at"] is None or "cancelled_at" in named)
                    and (r["archived_at"] is None or "archived_at" in named)
                    and all(_matches(r, *test) for test in tests)]
        rows = _sorted(rows, (sort if self.honours_sort else None) or "created_at", order)
        start = (page - 1) * per_page
        return rows[start:start + per_page], len(rows), len(rows) > start + per_page

    def get_appointment(self, appointment_id: str) -> dict[str, Any]:
        with self._lock:
            record = self.appointments.get(appointment_id)
            if record is None or record["deleted_at"] or record["archived_at"]:
                raise ClinikoError(404, "Not found")
            return copy.deepcopy(record)

    def update_appointment(self, appointment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.get_appointment(appointment_id)
        _only(body, APPOINTMENT_FIELDS)
        changes = {k: _time_value(v, k) if k in ("starts_at", "ends_at") else v
                   for k, v in body.items()}
        return self.edit_appointment(appointment_id, **changes)

    def get_patient(self, patient_id: str) -> dict[str, Any]:
        with self._lock:
            record = self.patients.get(patient_id)
            if record is None or record["deleted_at"]:
                raise ClinikoError(404, "Not found")
            return copy.deepcopy(record)

    def update_patient(self, patient_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.get_patient(patient_id)
        _only(body, PATIENT_FIELDS)
        for name, value in body.items():
            if value is not None and not isinstance(value, str):
                raise ClinikoError(422, "Validation failed", errors={name: ["must be text"]})
        return self.edit_patient(patient_id, **body)

    def count_call(self, account: dict[str, Any]) -> None:
        """Count a request against the user's 200 a minute, or refuse it with 429 and
        ``X-RateLimit-Reset`` (documented), on the stand-in's clock."""
        now = self.clock.now()
        with self._lock:
            calls = [t for t in account["calls"] if t > now - timedelta(minutes=1)]
            if len(calls) >= self.rate_limit:
                reset = calls[0] + timedelta(minutes=1)
                account["calls"] = calls
                raise ClinikoError(429, "Too many requests",
                                   {"X-RateLimit-Reset": str(int(reset.timestamp()) + 1)})
            account["calls"] = [*calls, now]

    def _new_id(self) -> str:
        return str(next(self._ids))


def _kind(kind: str, now: datetime) -> dict[str, Any]:
    return {
        "booked": {},
        "arrived": {"patient_arrived": True},
        "did_not_arrive": {"did_not_arrive": True},
        "cancelled": {"cancelled_at": now, "cancellation_reason": 50,
                      "cancellation_reason_description": "Other"},
        "archived": {"archived_at": now},
    }[kind]


def _filter(text: str) -> tuple[str, str, Any]:
    found = FILTER.match(text)
    if not found:
        raise ClinikoError(400, f"{text!r} is not a filter (field:operator value)")
    field, op, value = found["field"], found["op"], found["value"]
    kind = ("datetime" if field in DATETIME_FIELDS else "integer" if field in INTEGER_FIELDS
            else "boolean" if field in BOOLEAN_FIELDS else None)
    if kind is None:
        raise ClinikoError(400, f"individual appointments cannot be filtered by {field}")
    if op not in OPERATORS[kind]:
        raise ClinikoError(400, f"{op} is not an operator for {field}")
    if op in ("?", "!?", "*"):
        if value:
            raise ClinikoError(400, f"{op} takes no value")
        return field, op, None
    if kind == "datetime":
        if not UTC_TIME.match(value):
            raise ClinikoError(400, f"{value!r}: DateTimes must be in UTC, e.g. "
                               "2014-08-30T18:00:00Z")
        return field, op, _time_value(value, field)
    if kind == "boolean":
        if value not in ("true", "false"):
            raise ClinikoError(400, f"{value!r} is not true or false")
        return field, op, value == "true"
    parts = value.split(",")
    if not all(p.isdigit() for p in parts) or (len(parts) > 1 and op != "="):
        raise ClinikoError(400, f"{value!r} is not an integer")
    return field, op, [int(p) for p in parts] if op == "=" else int(value)


def _matches(record: dict[str, Any], field: str, op: str, value: Any) -> bool:
    actual = record.get(field)
    if field in INTEGER_FIELDS and actual is not None:
        actual = int(actual)
    if op == "*":
        return True
    if op in ("?", "!?"):
        return (actual is not None) == (op == "?")
    if actual is None:
        return False
    if op == "=":
        return actual in value if isinstance(value, list) else actual == value
    return {"!=": actual != value, ">=": actual >= value, ">": actual > value,
            "<=": actual <= value, "<": actual < value}[op]


def _sorted(rows: list[dict[str, Any]], sort: str, order: str | None) -> list[dict[str, Any]]:
    keys = []
    for part in sort.split(","):
        column, _, direction = part.strip().partition(":")
        if column not in DATETIME_FIELDS | INTEGER_FIELDS:
            raise ClinikoError(400, f"cannot sort by {column!r}")
        keys.append((column, (direction or order or "asc") == "desc"))
    # Ties in the last column: descending id, so nothing may rely on their order.
    rows = sorted(rows, key=lambda r: int(r["id"]), reverse=True)
    for column, descending in reversed(keys):
        rows.sort(key=lambda r, c=column: _sort_value(r.get(c), c), reverse=descending)
    return rows


def _sort_value(value: Any, column: str) -> tuple[int, Any]:
    if value is None:
        return (1, 0)
    return (0, int(value) if column in INTEGER_FIELDS else value)


def _time_value(value: Any, field: str) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise ClinikoError(422, "Validation failed", errors={field: ["is not a time"]}) from None


def _only(body: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ClinikoError(422, "Validation failed",
                           errors={name: ["is not a field Cliniko accepts"] for name in unknown})
