"""handlers/acuity/webhooks.py: Acuity's signature, the delivery id, and deliveries read as
events — one test per recorded delivery, then the negative cases."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers import acuity
from handlers.base import (
    BOOKED,
    CANCELLED,
    STATUSES,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    SignatureError,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "acuity"

# Every recorded delivery and what Rapport makes of it: (status, appointment id), or the
# reason it is acknowledged and left alone.
EXPECTED = {
    "scheduled__documented": (BOOKED, "54321"),
    "rescheduled__documented": (BOOKED, "54321"),
    "canceled__documented": (CANCELLED, "54321"),
    # "changed" says nothing of the state: booked until the appointment is read.
    "changed__documented": (BOOKED, "54321"),
    "appointment.scheduled__dynamic": (BOOKED, "54321"),
    "appointment.canceled__dynamic": (CANCELLED, "54321"),
    "scheduled__extra_field": (BOOKED, "54321"),
    "rescheduled__id_only": (BOOKED, "1109810062"),
    "order.completed__ignored": "order.completed is about an order, not an appointment",
    "appointment.deleted__unknown": "event type 'appointment.deleted' is not one Rapport acts on",
}


def test_every_recorded_delivery_has_an_expectation():
    assert sorted(EXPECTED) == sorted(p.stem for p in FIXTURES.glob("*.txt"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse(name, acuity_body, acuity_request, acuity_keys):
    request = acuity_request(acuity_body(name))
    acuity.verify(request, acuity_keys)
    expected = EXPECTED[name]
    if isinstance(expected, str):
        with pytest.raises(IgnoredEvent) as ignored:
            acuity.parse(request)
        assert str(ignored.value) == expected
        return
    [event] = acuity.parse(request)
    assert (event.status, event.appointment_id) == expected
    assert event.platform == "acuity"
    assert event.client.id == ""  # read from the appointment before Rapport acts
    assert event.start is None and event.therapist is None
    assert event.event_id == acuity.delivery_id(request)


# --- the signature ----------------------------------------------------------------------


def test_signature_is_what_acuity_computes(acuity_body, acuity_stand_in):
    body = acuity_body("scheduled__documented")
    headers = acuity.sign(body, api_key=acuity_stand_in.api_key)
    assert headers["X-Acuity-Signature"] == acuity_stand_in.signature(body)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_verify_accepts_the_clinics_key(acuity_body, acuity_request, acuity_keys):
    acuity.verify(acuity_request(acuity_body("canceled__documented")), acuity_keys)


def test_verify_refuses_another_key(acuity_body, acuity_request, acuity_keys):
    request = acuity_request(acuity_body("canceled__documented"), key="someone-elses-key")
    with pytest.raises(SignatureError, match="does not match"):
        acuity.verify(request, acuity_keys)


def test_verify_refuses_a_changed_body(acuity_body, acuity_request, acuity_keys):
    signed = acuity_request(acuity_body("scheduled__documented"))
    forged = InboundRequest(body=signed.body.replace(b"scheduled", b"canceled"),
                            headers=signed.headers)
    with pytest.raises(SignatureError):
        acuity.verify(forged, acuity_keys)


def test_verify_refuses_a_missing_header(acuity_body, acuity_keys):
    request = InboundRequest(body=acuity_body("scheduled__documented"), headers={})
    with pytest.raises(SignatureError, match="missing X-Acuity-Signature"):
        acuity.verify(request, acuity_keys)


@pytest.mark.parametrize("credentials", [{}, {"api_key": ""}, {"api_key": None,
                                                               "previous_api_keys": [""]}])
def test_verify_fails_closed_without_a_key(credentials, acuity_body, acuity_request):
    with pytest.raises(SignatureError, match="no Acuity API key"):
        acuity.verify(acuity_request(acuity_body("scheduled__documented")), credentials)


def test_verify_accepts_every_key_while_rotating(acuity_body, acuity_request):
    rotating = {"api_key": "new-key", "previous_api_keys": ["old-key", "older-key"]}
    body = acuity_body("rescheduled__documented")
    for key in ("new-key", "old-key", "older-key"):
        acuity.verify(acuity_request(body, key=key), rotating)
    with pytest.raises(SignatureError):
        acuity.verify(acuity_request(body, key="retired-key"), rotating)


def test_header_name_is_matched_whatever_its_case(acuity_body, acuity_request, acuity_keys):
    signed = acuity_request(acuity_body("scheduled__documented"))
    lower = InboundRequest(body=signed.body, headers={
        "x-acuity-signature": signed.header("X-Acuity-Signature")})
    acuity.verify(lower, acuity_keys)


def test_a_delivery_from_the_stand_in_verifies_as_received(acuity_stand_in, callback_receiver):
    """Acuity's delivery over real HTTP: the raw body and headers as they arrive verify."""
    booked = acuity_stand_in.seed_appointment(start="2026-11-25T15:00:00Z")
    body = acuity_stand_in.form_body("scheduled", booked["id"])
    acuity_stand_in.deliver(callback_receiver.url, body)
    [arrived] = callback_receiver.received
    request = InboundRequest(body=arrived.body, headers=arrived.headers)
    acuity.verify(request, acuity_stand_in.credentials())
    assert arrived.headers["Content-Type"] == "application/x-www-form-urlencoded"
    [event] = acuity.parse(request)
    assert event.appointment_id == str(booked["id"])


# --- malformed signed bodies --------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    (b"", "action"),
    (b"id=54321", "action"),
    (b"action=&id=54321", "action"),
    (b"action=scheduled", "id"),
    (b"action=scheduled&id=", "id"),
    (b"action=scheduled&id=abc", "id"),
    (b"action=scheduled&id=0", "id"),
    (b"action=scheduled&id=-4", "id"),
    (b"action=scheduled&id=123456789012345678901", "id"),
    (b"action=scheduled&id=54321&calendarID=x", "calendarID"),
    (b"action=scheduled&id=54321&appointmentTypeID=1.5", "appointmentTypeID"),
    (b"action=scheduled&id=54321&id=54322", "id"),
    (b"action=scheduled&action=canceled&id=1", "action"),
    (b"\xff\xfe\x00garbled", "body"),
    (b"action=scheduled&id=54321%FF", "body"),
    (b'{"action": "scheduled", "id": 54321}', "body"),
    (b"&".join(b"f%d=1" % i for i in range(40)), "body"),
    (b"action=scheduled&id=1&pad=" + b"x" * 9000, "body"),
    (b"action=" + b"s" * 100 + b"&id=1", "action"),
])
def test_a_malformed_body_names_the_field(body, field, acuity_request):
    with pytest.raises(PayloadError) as problem:
        acuity.parse(acuity_request(body))
    assert problem.value.field == field


FIELDS = {"body", "action", "id", "calendarID", "appointmentTypeID"}


def _parsed_or_refused_by_name(body: bytes) -> None:
    """A body is an event about a numbered appointment, a PayloadError naming one of the
    form's fields, or an acknowledged IgnoredEvent — never anything else."""
    try:
        events = acuity.parse(InboundRequest(body=body, headers={}))
    except PayloadError as problem:
        assert problem.field in FIELDS or problem.message == "given more than once"
        return
    except IgnoredEvent as ignored:
        assert ignored.event_type.removeprefix("appointment.") not in acuity.ACTION_STATUS
        return
    assert [e.appointment_id.isdigit() and e.status in STATUSES for e in events] == [True]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_any_body_is_an_event_a_payload_error_or_ignored(body):
    _parsed_or_refused_by_name(body)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["action", "id", "calendarID", "appointmentTypeID",
                                        "x"]),
                       st.sampled_from(["scheduled", "canceled", "appointment.changed", "7",
                                        "0", "", "x", "order.completed"]) | st.text(max_size=20),
                       max_size=5))
def test_any_form_is_an_event_a_payload_error_or_ignored(fields):
    _parsed_or_refused_by_name(urlencode(fields).encode())


# --- delivery ids -------------------------------------------------------------------------


def test_an_identical_redelivery_has_the_same_delivery_id(acuity_body, acuity_request):
    body = acuity_body("canceled__documented")
    assert acuity.delivery_id(acuity_request(body)) == acuity.delivery_id(acuity_request(body))
    # The signature is not part of it: the same body signed after a key change is a repeat.
    assert acuity.delivery_id(acuity_request(body)) == acuity.delivery_id(
        acuity_request(body, key="rotated"))


def test_other_actions_and_appointments_have_other_delivery_ids(acuity_body, acuity_request):
    ids = {acuity.delivery_id(acuity_request(acuity_body(name))) for name in (
        "scheduled__documented", "rescheduled__documented", "canceled__documented",
        "changed__documented", "rescheduled__id_only")}
    assert len(ids) == 5
    assert all(value.startswith("acuity:") and len(value) <= 64 for value in ids)


def test_a_garbled_body_has_no_delivery_id(acuity_request):
    with pytest.raises(PayloadError):
        acuity.delivery_id(acuity_request(b"\xff\xfe"))
