"""Mindbody webhook deliveries: signature, delivery id, routing by site, and one line per
recorded event."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from handlers import mindbody
from handlers.base import (
    AppointmentEvent,
    Client,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    Person,
    SignatureError,
)
from tests.handlers.mindbody.shared import FIXTURES, SIGNATURE_KEY


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=UTC)


SAM = Client(id="100000120", email="sam.lee@example.com", first_name="Sam")
DANA = Person(id="7", name="Dana Ruiz")


def visit(event_id, occurred, status, **changes) -> AppointmentEvent:
    values = dict(platform="mindbody", event_id=event_id, occurred_at=at(occurred),
                  appointment_id="30512", status=status, client=SAM,
                  start=at("2026-11-25T14:00:00"), end=at("2026-11-25T15:00:00"),
                  service="Deep tissue 60", therapist=DANA, location_id="1")
    values.update(changes)
    return AppointmentEvent(**values)


CASES = {
    "appointmentBooking.created__booked":
        visit("Bq3kW8pLr2NfX5aJ7yHc1D", "2026-11-20T09:12:44Z", "booked"),
    "appointmentBooking.created__requested":
        visit("Rq9mT4vZ1kLs8wEx3nPd6F", "2026-11-20T09:15:02Z", "booked"),
    "appointmentBooking.updated__confirmed":
        visit("Cf2nH7qYt5Ws1mKb9xLr4G", "2026-11-24T18:00:10Z", "booked"),
    "appointmentBooking.updated__arrived":
        visit("Ar6pJ3xNw8Qe2tVd5zMk7H", "2026-11-25T13:56:31Z", "booked"),
    "appointmentBooking.updated__completed":
        visit("Cm4rL9sBy1Xf6uGh2oNa8J", "2026-11-25T15:03:27Z", "completed"),
    "appointmentBooking.updated__no_show":
        visit("Ns8tD2wKz5Yc3pRj6qFb1K", "2026-11-25T14:20:00Z", "no_show"),
    "appointmentBooking.cancelled__cancelled":
        visit("Cx1vM6aQe9Zg4sTl7rHn2L", "2026-11-22T11:45:09Z", "cancelled"),
    "appointmentBooking.cancelled__late_cancelled":
        visit("Lc5yP8cRf2Ah7wUm3tJo9M", "2026-11-25T10:30:00Z", "cancelled"),
    # Offsets are honoured; no email, no staff last name, no appointment name.
    "appointmentBooking.updated__completed_offset_times":
        visit("Ot3zS7dTg6Bi1xVn4uKp5N", "2026-11-25T15:03:27.512Z", "completed",
              start=at("2026-11-25T14:00:00Z"), end=at("2026-11-25T15:30:00Z"),
              client=Client(id="100000120", first_name="Sam"), service=None,
              therapist=Person(id="7", name="Dana")),
    "appointmentBooking.created__reference_example": AppointmentEvent(
        platform="mindbody", event_id="ASwFMoA2Q5UKw69g3RDbvU",
        occurred_at=at("2018-04-18T10:02:55Z"), appointment_id="121", status="booked",
        client=Client(id="100000120", email="john.smith@gmail.com", first_name="John"),
        start=at("2018-03-20T10:30:00"), end=at("2018-03-20T11:00:00"), service="Massage 30",
        therapist=Person(id="5", name="Jane Doe"), location_id="1"),
}
IGNORED = {
    "clientArrival.created__ignored": "clientArrival.created",
    "appointmentBooking.updated__unknown_status": "appointmentBooking.updated",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_parses_to_the_expected_event(name, mb_fixture, mb_signed):
    assert mindbody.parse(mb_signed(mb_fixture(name))) == [CASES[name]]


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_events_rapport_does_not_act_on_are_ignored_by_name(name, mb_fixture, mb_signed):
    with pytest.raises(IgnoredEvent) as raised:
        mindbody.parse(mb_signed(mb_fixture(name)))
    assert raised.value.event_type == IGNORED[name]


def test_every_fixture_is_tested():
    assert sorted(path.stem for path in FIXTURES.glob("*.json")) == sorted({*CASES, *IGNORED})


def test_every_status_in_the_public_api_is_mapped():
    public = {"Requested", "Booked", "Completed", "Confirmed", "Arrived", "NoShow", "Cancelled",
              "LateCancelled"}
    assert public <= set(mindbody.STATUSES)
    assert {mindbody.STATUSES[s] for s in ("Cancelled", "LateCancelled")} == {"cancelled"}
    assert [s for s, mapped in mindbody.STATUSES.items() if mapped == "completed"] == ["Completed"]


# --- the signature -------------------------------------------------------------------


def test_the_signature_is_mindbodys_sha256_prefix_and_base64(mb_fixture):
    body = mb_fixture("appointmentBooking.updated__completed")
    digest = hmac.new(SIGNATURE_KEY.encode(), body, hashlib.sha256).digest()
    expected = "sha256=" + base64.b64encode(digest).decode()
    assert mindbody.sign(body, signature_key=SIGNATURE_KEY)["X-Mindbody-Signature"] == expected


def test_a_good_signature_is_accepted(mb_fixture, mb_signed):
    request = mb_signed(mb_fixture("appointmentBooking.updated__completed"))
    assert mindbody.verify(request, {"signature_keys": [SIGNATURE_KEY]}) is None


def test_a_signature_with_another_key_is_refused(mb_fixture, mb_signed):
    request = mb_signed(mb_fixture("appointmentBooking.updated__completed"), key="other")
    with pytest.raises(SignatureError, match="does not match"):
        mindbody.verify(request, {"signature_keys": [SIGNATURE_KEY]})


def test_a_body_changed_after_signing_is_refused(mb_fixture, mb_signed):
    signed = mb_signed(mb_fixture("appointmentBooking.updated__completed"))
    tampered = InboundRequest(body=signed.body.replace(b"Completed", b"NoShow"),
                              headers=signed.headers)
    with pytest.raises(SignatureError):
        mindbody.verify(tampered, {"signature_keys": [SIGNATURE_KEY]})


def test_a_missing_header_is_refused(mb_fixture):
    request = InboundRequest(body=mb_fixture("appointmentBooking.updated__completed"),
                             headers={"Content-Type": "application/json"})
    with pytest.raises(SignatureError, match="missing"):
        mindbody.verify(request, {"signature_keys": [SIGNATURE_KEY]})


@pytest.mark.parametrize("keys", [None, [], [""], ""])
def test_without_a_key_nothing_is_accepted(keys, mb_fixture, mb_signed):
    request = mb_signed(mb_fixture("appointmentBooking.updated__completed"))
    with pytest.raises(SignatureError, match="no Mindbody signature key"):
        mindbody.verify(request, {"signature_keys": keys})


def test_while_rotating_either_key_is_accepted(mb_fixture, mb_signed):
    body = mb_fixture("appointmentBooking.updated__completed")
    both = {"signature_keys": ["old-key", SIGNATURE_KEY]}
    mindbody.verify(mb_signed(body, key="old-key"), both)
    mindbody.verify(mb_signed(body, key=SIGNATURE_KEY), both)
    with pytest.raises(SignatureError):
        mindbody.verify(mb_signed(body, key="retired-key"), both)


def test_a_signature_without_its_prefix_is_refused(mb_fixture):
    body = mb_fixture("appointmentBooking.updated__completed")
    bare = mindbody.sign(body, signature_key=SIGNATURE_KEY)["X-Mindbody-Signature"][7:]
    request = InboundRequest(body=body, headers={"X-Mindbody-Signature": bare})
    with pytest.raises(SignatureError):
        mindbody.verify(request, {"signature_keys": [SIGNATURE_KEY]})


# --- delivery id and routing ---------------------------------------------------------


def test_the_delivery_id_is_the_message_id_on_every_retry(mb_fixture, mb_signed):
    body = mb_fixture("appointmentBooking.updated__completed")
    first, retry = mb_signed(body), mb_signed(body)
    assert mindbody.delivery_id(first) == mindbody.delivery_id(retry) == "Cm4rL9sBy1Xf6uGh2oNa8J"


def test_events_are_routed_by_site_id(mb_fixture, mb_signed):
    assert mindbody.site_id(mb_signed(mb_fixture("appointmentBooking.updated__completed"))) == "-99"
    reference = mb_signed(mb_fixture("appointmentBooking.created__reference_example"))
    assert mindbody.PLATFORM.account_id(reference) == "123"


def test_an_event_without_a_site_routes_nowhere(mb_signed):
    body = json.dumps({"messageId": "m", "eventId": "appointmentBooking.updated",
                       "eventData": {"appointmentId": 1}}).encode()
    assert mindbody.site_id(mb_signed(body)) is None


# --- malformed signed bodies -------------------------------------------------------


def completed(**data) -> dict:
    body = json.loads((FIXTURES / "appointmentBooking.updated__completed.json").read_text())
    body["eventData"].update(data)
    return body


MALFORMED = [
    (b"not json", "body"),
    (b"[1, 2]", "body"),
    (b"\xff\xfe{}", "body"),
    (b"[" * 1000 + b"]" * 1000, "body"),
    (b'{"eventData": ' * 1000 + b"{}" + b"}" * 1000, "body"),
    (json.dumps(completed(status=json.loads("[" * 900 + "]" * 900))).encode(), "eventData.status"),
    (json.dumps(completed(notes=json.loads("[" * 900 + "]" * 900))).encode(), None),
    (json.dumps({"eventId": 7}).encode(), "eventId"),
    (json.dumps({**completed(), "messageId": None}).encode(), "messageId"),
    (json.dumps({**completed(), "eventInstanceOriginationDateTime": "yesterday"}).encode(),
     "eventInstanceOriginationDateTime"),
    (json.dumps(completed(startDateTime="0001-01-01T00:00:00+05:00")).encode(),
     "eventData.startDateTime"),
    (json.dumps(completed(endDateTime="9999-12-31T23:59:59-05:00")).encode(),
     "eventData.endDateTime"),
    (json.dumps(completed(startDateTime="0001-01-01T00:00:00")).encode(),
     "eventData.startDateTime"),
    (json.dumps(completed(appointmentId=10 ** 80)).encode(), "eventData.appointmentId"),
    (json.dumps(completed(appointmentId=1.5)).encode(), "eventData.appointmentId"),
    (json.dumps(completed(appointmentId=True)).encode(), "eventData.appointmentId"),
    (b'{"messageId": "m", "eventId": "appointmentBooking.updated", "eventData": {"siteId": '
     + b"9" * 5000 + b"}}", "body"),
    (json.dumps(completed(siteId=None)).encode(), "eventData.siteId"),
    (json.dumps(completed(clientEmail="not an address")).encode(), "eventData.clientEmail"),
    (json.dumps(completed(status=["Completed"])).encode(), "eventData.status"),
    (json.dumps(completed(startDateTime=1e400)).encode(), "eventData.startDateTime"),
    (json.dumps(completed(endDateTime="2026-11-25T13:00:00")).encode(), "eventData.endDateTime"),
    (json.dumps({**completed(), "eventData": [[[]]]}).encode(), "eventData"),
]


@pytest.mark.parametrize("body, field", MALFORMED, ids=[str(f) for _, f in MALFORMED])
def test_a_malformed_signed_body_names_the_field(body, field, mb_signed):
    if field is None:  # deep, but in a field Rapport does not read: parsed as usual
        assert mindbody.parse(mb_signed(body))[0].status == "completed"
        return
    with pytest.raises(PayloadError) as raised:
        mindbody.parse(mb_signed(body))
    assert raised.value.field == field


def test_a_delivery_without_a_message_id_names_it(mb_signed):
    with pytest.raises(PayloadError) as raised:
        mindbody.delivery_id(mb_signed(json.dumps({"eventId": "x"}).encode()))
    assert raised.value.field == "messageId"
