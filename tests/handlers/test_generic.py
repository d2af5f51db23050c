"""One test per generic-platform fixture: what each event becomes."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from handlers import generic
from handlers.base import (
    AppointmentEvent,
    Client,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    Person,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "generic"
UTC = timezone.utc
SAM = Client(id="C-7", email="sam@example.com", first_name="Sam", locale="en")
DANA = Person(id="T-2", name="Dana")
START, END = datetime(2026, 11, 25, 14, tzinfo=UTC), datetime(2026, 11, 25, 15, tzinfo=UTC)


def event(status: str, occurred: datetime, **changes) -> AppointmentEvent:
    values = {"platform": "generic", "event_id": "msg_1", "occurred_at": occurred,
              "appointment_id": "A-100", "status": status, "client": SAM, "start": START,
              "end": END, "service": "Deep tissue 60", "therapist": DANA, **changes}
    return AppointmentEvent(**values)


EXPECTED = {
    "appointment.completed__design_example": event("completed", END),
    "appointment.booked__design_example": event(
        "booked", datetime(2026, 11, 20, 9, 12, tzinfo=UTC)),
    "appointment.cancelled__without_times": event(
        "cancelled", datetime(2026, 11, 24, 18, tzinfo=UTC), start=None, end=None),
    "appointment.no_show__design_example": event(
        "no_show", datetime(2026, 11, 25, 14, 20, tzinfo=UTC)),
    "appointment.completed__numeric_ids": event(
        "completed", END, appointment_id="100", client=Client("7", "sam@example.com", "Sam", "en"),
        therapist=Person("2", "Dana")),
    "appointment.completed__offset_times_no_therapist": event(
        "completed", END, client=Client("C-9", "lea@example.fr", "Léa", "fr-CA"),
        start=datetime(2026, 11, 25, 15, tzinfo=UTC),
        end=datetime(2026, 11, 25, 16, 30, tzinfo=UTC), therapist=None),
    "appointment.completed__unknown_fields": event("completed", END),
}


def request_for(name: str) -> InboundRequest:
    return InboundRequest(body=(FIXTURES / f"{name}.json").read_bytes(),
                          headers={"webhook-id": "msg_1"})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_the_expected_event(name):
    assert generic.parse(request_for(name)) == [EXPECTED[name]]


def test_every_fixture_is_covered():
    names = {path.stem for path in FIXTURES.glob("*.json")}
    assert names == set(EXPECTED) | {"invoice.paid__ignored"}


def test_unknown_event_type_is_ignored_not_an_error():
    with pytest.raises(IgnoredEvent) as raised:
        generic.parse(request_for("invoice.paid__ignored"))
    assert raised.value.event_type == "invoice.paid"


@pytest.mark.parametrize("body, field", [
    (b"[]", "body"),
    (b'{"timestamp": "2026-11-25T15:00:00Z"}', "type"),
    (b'{"type": 5}', "type"),
    (b'{"type": "appointment.completed", "timestamp": "2026-11-25T15:00:00", "data": {}}',
     "timestamp"),
    (b'{"type": "appointment.completed", "timestamp": "2026-11-25T15:00:00Z", '
     b'"data": {"appointment": {"id": "A"}, "client": {"id": "C"}}}', "data.appointment.start"),
    (b'{"type": "appointment.completed", "timestamp": "2026-11-25T15:00:00Z", '
     b'"data": {"appointment": {"id": "A", "start": "2026-11-25T15:00:00Z", '
     b'"end": "2026-11-25T14:00:00Z"}, "client": {"id": "C"}}}', "data.appointment.end"),
])
def test_malformed_bodies_name_the_field(body, field):
    with pytest.raises(PayloadError) as raised:
        generic.parse(InboundRequest(body=body, headers={"webhook-id": "m"}))
    assert raised.value.field == field
