"""Square booking webhooks → AppointmentEvent: one line per recorded event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from handlers import square
from handlers.base import (
    AppointmentEvent,
    Client,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    Person,
)
from tests.sandboxes.openapi import contract

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "square"

CUSTOMER = Client(id="SSKBT02ECWZXK6W3VWYC78E52R")
DANA = Person(id="_4GsfYnqGHyurOwzWdKj")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def expected(event_id, occurred, status, start, end, version) -> AppointmentEvent:
    return AppointmentEvent(
        platform="square",
        event_id=event_id,
        occurred_at=at(occurred),
        appointment_id="i2id2g3enyspi7",
        status=status,
        client=CUSTOMER,
        start=at(start),
        end=at(end),
        service=None,
        therapist=DANA,
        version=version,
        location_id="L9R0X9X5SGDBJ",
    )


# fixture, event id, occurred at, status, start, end, version
CASES = [
    ("booking.created__accepted", "76193e8a-db85-53c6-b538-1837519cbc12",
     "2020-12-08T19:56:53Z", "booked", "2020-12-17T16:00:00Z", "2020-12-17T16:30:00Z", 0),
    ("booking.created__pending", "5a1c2b7e-4c1f-5b8e-9d21-6f0a3e9b7c10",
     "2020-12-08T19:56:53Z", "booked", "2020-12-17T16:00:00Z", "2020-12-17T16:30:00Z", 0),
    # 60 min, 15 min intermission, 30 min: the visit ends 1 h 45 after it starts.
    ("booking.created__multi_segment", "0e6d8f3a-2b9c-5d47-a1e2-7c4b9f0d3e21",
     "2020-12-08T19:58:10Z", "booked", "2020-12-17T16:00:00Z", "2020-12-17T17:45:00Z", 0),
    ("booking.updated__customer_note", "d954ea4e-a393-52d4-bda6-bfd10cbd571f",
     "2020-12-08T20:05:00Z", "booked", "2020-12-17T16:00:00Z", "2020-12-17T16:30:00Z", 1),
    ("booking.updated__accepted_rescheduled", "9c2f7a1d-6e3b-5f80-b4a9-2d1e8c7f6a32",
     "2020-12-10T09:12:44Z", "booked", "2020-12-18T17:30:00Z", "2020-12-18T18:00:00Z", 2),
    ("booking.updated__cancelled_by_customer", "3f8b1e6c-9a2d-5c71-8e4f-0b7a6d5c4e43",
     "2020-12-11T08:01:02Z", "cancelled", "2020-12-17T16:00:00Z", "2020-12-17T16:30:00Z", 2),
    ("booking.updated__cancelled_by_seller", "7d4a9c2e-1f6b-5e38-a0c7-4e9b2f1d8c54",
     "2020-12-11T08:05:40Z", "cancelled", "2020-12-17T16:00:00Z", "2020-12-17T16:30:00Z", 2),
    ("booking.updated__declined", "c1e7b3a9-5d2f-5a64-9b8e-6f3c0a2d7e65",
     "2020-12-08T20:10:00Z", "cancelled", "2020-12-17T16:00:00Z", "2020-12-17T16:30:00Z", 1),
    ("booking.updated__no_show", "e8b2d6f4-3a1c-5b97-8f0d-1c5e9a7b3f76",
     "2020-12-17T17:05:00Z", "no_show", "2020-12-17T16:00:00Z", "2020-12-17T16:30:00Z", 2),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_fixture_parses_to_the_expected_event(case, square_fixture, square_delivery):
    name, *fields = case
    assert square.parse(square_delivery(square_fixture(name))) == [expected(*fields)]


def test_every_fixture_is_tested_and_matches_squares_event_schema(square_fixture):
    names = sorted(path.stem for path in FIXTURES.glob("*.json"))
    assert sorted([case[0] for case in CASES] + [
        "customer.created__ignored", "oauth.authorization.revoked__by_merchant"]) == names
    spec = contract("platforms/square/api.json")
    schemas = {"booking.created": "BookingCreatedEvent", "booking.updated": "BookingUpdatedEvent",
               "customer.created": "CustomerCreatedEvent",
               "oauth.authorization.revoked": "OauthAuthorizationRevokedEvent"}  # fmt: skip
    for name in names:
        schema = schemas[name.split("__")[0]]
        assert spec.problems(schema, json.loads(square_fixture(name)), request=False) == [], name


def test_delivery_id_is_squares_event_id(square_fixture, square_delivery):
    request = square_delivery(square_fixture("booking.updated__no_show"))
    assert square.delivery_id(request) == "e8b2d6f4-3a1c-5b97-8f0d-1c5e9a7b3f76"


def test_merchant_id_routes_application_level_deliveries(square_fixture, square_delivery):
    delivery = square_delivery(square_fixture("booking.created__accepted"))
    assert square.merchant_id(delivery) == "GQQWA3J6A3AEZ"
    assert square.merchant_id(square_delivery(b'{"type": "booking.created"}')) is None


def test_other_event_types_are_ignored_by_name(square_fixture, square_delivery):
    with pytest.raises(IgnoredEvent) as caught:
        square.parse(square_delivery(square_fixture("customer.created__ignored")))
    assert caught.value.event_type == "customer.created"


def test_a_revocation_names_the_seller_and_is_no_booking_event(square_fixture, square_delivery):
    request = square_delivery(square_fixture("oauth.authorization.revoked__by_merchant"))
    assert square.revocation(request) == (
        "GQQWA3J6A3AEZ", datetime(2020, 12, 20, 10, 15, 1, tzinfo=UTC))
    assert square.revocation(square_delivery(square_fixture("booking.created__accepted"))) is None
    with pytest.raises(IgnoredEvent):
        square.parse(request)


def test_out_of_order_deliveries_keep_their_versions(square_fixture, square_delivery):
    later = square.parse(
        square_delivery(square_fixture("booking.updated__cancelled_by_customer")))[0]
    earlier = square.parse(square_delivery(square_fixture("booking.created__accepted")))[0]
    assert (later.version, earlier.version) == (2, 0)
    assert later.status == "cancelled" and earlier.status == "booked"


def body_with(change) -> bytes:
    event = json.loads((FIXTURES / "booking.created__accepted.json").read_bytes())
    change(event, event["data"]["object"]["booking"])
    return json.dumps(event).encode()


def set_(key, value):
    return lambda event, booking: booking.__setitem__(key, value)


@pytest.mark.parametrize(
    "change, field",
    [
        (set_("start_at", "next tuesday"), "data.object.booking.start_at"),
        (set_("start_at", None), "data.object.booking.start_at"),
        (set_("status", None), "data.object.booking.status"),
        (set_("version", "3"), "data.object.booking.version"),
        (set_("customer_id", 5), "data.object.booking.customer_id"),
        (set_("appointment_segments", []), "data.object.booking.appointment_segments"),
        (
            lambda event, booking: booking["appointment_segments"][0].update(
                duration_minutes="60"),
            "data.object.booking.appointment_segments.0.duration_minutes",
        ),
        (lambda event, booking: event["data"].pop("object"), "data.object"),
        (lambda event, booking: event.pop("created_at"), "created_at"),
        (lambda event, booking: event.pop("event_id"), "event_id"),
    ],
)
def test_a_schema_break_names_the_field(change, field, square_delivery):
    with pytest.raises(PayloadError) as caught:
        square.parse(square_delivery(body_with(change)))
    assert caught.value.field == field


@pytest.mark.parametrize(
    "change, reason",
    [
        (set_("status", "TELEPORTED"), "status TELEPORTED is not one Rapport knows"),
        (set_("customer_id", None), "the booking has no customer"),
        (lambda event, booking: booking.pop("customer_id"), "the booking has no customer"),
    ],
)
def test_a_booking_rapport_cannot_act_on_is_acknowledged_and_ignored(change, reason,
                                                                     square_delivery):
    """Square's specification allows these; refusing them would only bring the event
    back for days."""
    with pytest.raises(IgnoredEvent) as caught:
        square.parse(square_delivery(body_with(change)))
    assert (caught.value.event_type, caught.value.reason) == ("booking.created", reason)


def test_a_segment_without_a_duration_adds_no_time(square_delivery):
    body = body_with(lambda event, booking: booking["appointment_segments"][0].update(
        duration_minutes=None))
    event = square.parse(square_delivery(body))[0]
    assert event.end == event.start


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[1, 2]", b""])
def test_malformed_bodies_are_payload_errors(body):
    request = InboundRequest(body=body, headers={})
    with pytest.raises(PayloadError) as caught:
        square.parse(request)
    assert caught.value.field == "body"
    with pytest.raises(PayloadError):
        square.delivery_id(request)


def test_an_event_without_type_or_id_is_a_payload_error(square_delivery):
    with pytest.raises(PayloadError) as caught:
        square.parse(square_delivery(b'{"event_id": "e-1"}'))
    assert caught.value.field == "type"
    with pytest.raises(PayloadError) as caught:
        square.delivery_id(square_delivery(b'{"type": "booking.created"}'))
    assert caught.value.field == "event_id"


def test_unknown_fields_are_ignored(square_delivery):
    body = body_with(lambda event, booking: booking.update(brand_new_field={"x": 1}))
    assert square.parse(square_delivery(body))[0].appointment_id == "i2id2g3enyspi7"
