"""A signed body is read or refused by name, never crashed on: per adapter, the cases a
fuzz of mutated deliveries found (JSON nested past what Python walks, times in year 1
or 9999 with an offset, a segment lasting 10^30 minutes, an object where a list was
expected, a string holding half a surrogate pair). Each must be a PayloadError naming
the field, or an ignored event; never RecursionError, OverflowError or AttributeError
(which the receiver answered 500), nor an event stored that no database takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import handlers
from handlers.base import IgnoredEvent, InboundRequest, PayloadError
from handlers.cliniko import deliveries

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEEP = b"[" * 100_000 + b"]" * 100_000
YEAR_1 = "0001-01-01T00:00:00+05:00"
YEAR_9999 = "9999-12-31T23:59:59-05:00"


def fixture(platform: str, name: str) -> dict:
    return json.loads((FIXTURES / platform / name).read_text())


def outcome(call) -> str:
    """``field`` of the PayloadError, ``ignored``, or ``read``; anything else raises."""
    try:
        call()
    except PayloadError as error:
        return error.field
    except IgnoredEvent:
        return "ignored"
    return "read"


def changed(document: dict, path: tuple, value) -> bytes:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(copy).encode()


# --- generic ---------------------------------------------------------------------------

GENERIC = fixture("generic", "appointment.completed__design_example.json")


def generic(body: bytes) -> str:
    request = InboundRequest(body=body, headers={"webhook-id": "msg_1"})
    return outcome(lambda: handlers.platform("generic").parse(request))


@pytest.mark.parametrize(("path", "value", "field"), [
    (("timestamp",), YEAR_1, "timestamp"),
    (("timestamp",), YEAR_9999, "timestamp"),
    (("data", "appointment", "start"), YEAR_1, "data.appointment.start"),
    (("data", "appointment", "end"), YEAR_9999, "data.appointment.end"),
    (("data", "appointment", "end"), "9999-12-31T23:59:59Z", "data.appointment.end"),
    (("data", "client"), [1], "data.client"),
    (("data",), [1], "data"),
])
def test_generic_refuses_by_name(path, value, field):
    assert generic(changed(GENERIC, path, value)) == field


def test_generic_refuses_a_lone_surrogate_by_name():
    # Valid JSON, stored, then no database would take it: the fuzz's first worker failure.
    assert generic(changed(GENERIC, ("data", "client", "first_name"), "\ud800")) == (
        "data.client.first_name")
    assert generic(changed(GENERIC, ("data", "appointment", "id"), "x\udfffy")) == (
        "data.appointment.id")
    # NUL: text, but not in PostgreSQL (the inbox's insert failed there, answered 503).
    assert generic(changed(GENERIC, ("data", "client", "first_name"), "Sam\x00")) == (
        "data.client.first_name")
    # A pair is one character, and is read.
    assert generic(changed(GENERIC, ("data", "client", "first_name"), "\U0001f33f")) == "read"


def test_generic_deep_nesting_is_a_malformed_body():
    assert generic(DEEP) == "body"
    assert generic(b'{"type": "appointment.completed", "x": ' + DEEP + b"}") == "body"


# --- square ----------------------------------------------------------------------------

SQUARE = fixture("square", "booking.created__accepted.json")
REVOKED = fixture("square", "oauth.authorization.revoked__by_merchant.json")


def square(body: bytes, call: str = "parse") -> str:
    request = InboundRequest(body=body, headers={})
    return outcome(lambda: getattr(handlers.platform("square"), call)(request))


@pytest.mark.parametrize(("path", "value", "field"), [
    (("created_at",), YEAR_1, "created_at"),
    (("data", "object", "booking", "start_at"), YEAR_9999, "data.object.booking.start_at"),
    (("data", "object", "booking", "appointment_segments", 0, "duration_minutes"), 10 ** 30,
     "data.object.booking.appointment_segments.0.duration_minutes"),
    (("data", "object", "booking", "appointment_segments", 0, "duration_minutes"),
     99_999_999, "data.object.booking.appointment_segments.0.duration_minutes"),
    (("data", "object", "booking"), [1], "data.object.booking"),
    # No database's INTEGER holds it: the worker failed to store the appointment.
    (("data", "object", "booking", "version"), 2 ** 31, "data.object.booking.version"),
    (("data", "object", "booking", "version"), -1, "data.object.booking.version"),
])
def test_square_refuses_by_name(path, value, field):
    assert square(changed(SQUARE, path, value)) == field


def test_square_refuses_a_lone_surrogate_by_name():
    path = ("data", "object", "booking", "customer_note")
    assert square(changed(SQUARE, path, "\ud800")) == "data.object.booking.customer_note"
    assert square(changed(SQUARE, ("event_id",), "\udbff"), "delivery_id") == "event_id"
    assert square(changed(SQUARE, ("event_id",), "a\x00b"), "delivery_id") == "event_id"


@pytest.mark.parametrize("call", ["delivery_id", "parse", "account_id", "revocation"])
def test_square_deep_nesting_is_a_malformed_body(call):
    assert square(DEEP, call) == "body"


@pytest.mark.parametrize("data", [[1], {"object": [1]}, {"object": {"revocation": "x"}}, 7])
def test_a_square_revocation_of_any_shape_is_read_by_its_merchant(data):
    body = changed(REVOKED, ("data",), data)
    revoked = handlers.platform("square").revocation(InboundRequest(body=body, headers={}))
    assert revoked.account_id == REVOKED["merchant_id"]


def test_a_square_revocation_in_year_1_has_no_time():
    body = changed(REVOKED, ("data", "object", "revocation", "revoked_at"), YEAR_1)
    body = changed(json.loads(body), ("created_at",), YEAR_1)
    revoked = handlers.platform("square").revocation(InboundRequest(body=body, headers={}))
    assert revoked.at is None


# --- mindbody --------------------------------------------------------------------------

MINDBODY = fixture("mindbody", "appointmentBooking.updated__completed.json")


def mindbody(body: bytes, call: str = "parse") -> str:
    request = InboundRequest(body=body, headers={})
    return outcome(lambda: getattr(handlers.platform("mindbody"), call)(request))


@pytest.mark.parametrize(("path", "value", "field"), [
    (("eventInstanceOriginationDateTime",), YEAR_1, "eventInstanceOriginationDateTime"),
    (("eventData", "endDateTime"), YEAR_9999, "eventData.endDateTime"),
    (("eventData", "appointmentId"), 10 ** 80, "eventData.appointmentId"),
    (("eventData",), [1], "eventData"),
])
def test_mindbody_refuses_by_name(path, value, field):
    assert mindbody(changed(MINDBODY, path, value)) == field


def test_mindbody_refuses_a_lone_surrogate_by_name():
    body = changed(MINDBODY, ("eventData", "clientFirstName"), "Sam\ud800")
    assert mindbody(body) == "eventData.clientFirstName"
    assert mindbody(changed(MINDBODY, ("messageId",), "\udc00"), "delivery_id") == "messageId"
    # Its three bytes, unescaped, are what json.loads reads from bytes as half a pair too:
    # the inbox's insert failed on it (503).
    raw = json.dumps(MINDBODY).replace('"messageId": "', '"messageId": "\udc00', 1)
    raw = raw.encode("utf-8", "surrogatepass")
    assert mindbody(raw, "delivery_id") == "messageId"


@pytest.mark.parametrize("call", ["delivery_id", "parse", "account_id"])
def test_mindbody_deep_nesting_is_a_malformed_body(call):
    assert mindbody(DEEP, call) == "body"


# --- acuity ----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    (b"action=scheduled&id=" + b"9" * 30, "id"),
    (b"action=scheduled&id=1&calendarID=" + b"9" * 40, "calendarID"),
    (b"action=scheduled&id=1.5", "id"),
    (b"action=" + b"[" * 5000, "action"),
    (b"action=scheduled&id=" + b"%5B" * 3000, "body"),
    (b"action=scheduled&id=1&=&=", "body"),  # was named "" (the field's empty name)
])
def test_acuity_refuses_by_name(body, field):
    request = InboundRequest(body=body, headers={})
    assert outcome(lambda: handlers.platform("acuity").parse(request)) == field


# --- cliniko ---------------------------------------------------------------------------

CLINIKO = fixture("cliniko", "individual_appointment__arrived.json")


def cliniko(body: bytes, call: str = "parse", **headers) -> str:
    request = InboundRequest(body=body, headers={
        deliveries.FETCHED_AT: "2026-11-25T15:00:00Z", **headers})
    return outcome(lambda: getattr(deliveries, call)(request))


@pytest.mark.parametrize(("field", "value"), [
    ("updated_at", YEAR_1), ("starts_at", YEAR_9999), ("ends_at", YEAR_9999),
    ("cancelled_at", YEAR_1), ("deleted_at", YEAR_9999)])
def test_cliniko_refuses_by_name(field, value):
    assert cliniko(changed(CLINIKO, (field,), value)) == field


def test_cliniko_refuses_a_lone_surrogate_by_name():
    assert cliniko(changed(CLINIKO, ("notes",), "\ud800")) == "notes"


def test_cliniko_deep_nesting_and_a_huge_grace():
    assert cliniko(DEEP) == "body"
    assert cliniko(json.dumps(CLINIKO).encode(),
                   **{deliveries.GRACE_MINUTES: "9" * 30}) == deliveries.GRACE_MINUTES
    # A body that cannot be read still gets a delivery id of its own (a digest).
    assert cliniko(DEEP, "delivery_id") == "read"
