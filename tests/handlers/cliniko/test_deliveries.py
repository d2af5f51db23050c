"""Polled deliveries → AppointmentEvent: one line per recorded appointment, its delivery
id, and the malformed bodies parse must refuse with a PayloadError naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers.base import AppointmentEvent, Client, IgnoredEvent, InboundRequest, PayloadError
from handlers.base import Person as P
from handlers.cliniko import FETCHED_AT, PLATFORM, delivery, delivery_id, parse

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cliniko"
GRACE = timedelta(minutes=15)
SAM = Client(id="1176000000000000082")
DANA = P(id="1176000000000000003")
CLINIC = "1176000000000000001"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def event(ident, status, occurred, start, end, *, client=SAM, therapist=DANA,
          location=CLINIC, updated=None) -> AppointmentEvent:
    return AppointmentEvent(
        platform="cliniko", event_id=f"cliniko:{ident}:{updated or occurred}:{status}",
        occurred_at=at(occurred), appointment_id=ident, status=status, client=client,
        start=at(start), end=at(end), service=None, therapist=therapist, location_id=location)


# fixture, fetched at, since, the event it is (or the reason it is ignored)
CASES = [
    # Cliniko's own example, read a minute after its last change, 34 hours after it ended.
    ("individual_appointment__documented", "2016-07-22T15:11:08Z", "2016-07-01T00:00:00Z",
     event("1", "completed", "2016-07-22T15:10:08Z", "2016-07-21T03:45:00Z",
           "2016-07-21T04:30:00Z", client=Client(id="82"), therapist=P(id="1"), location="1")),
    ("individual_appointment__cancelled_documented", "2016-07-22T15:11:08Z",
     "2016-07-01T00:00:00Z",
     event("1", "cancelled", "2016-07-22T15:10:08Z", "2016-07-21T03:45:00Z",
           "2016-07-21T04:30:00Z", client=Client(id="82"), therapist=P(id="1"), location="1")),
    ("individual_appointment__deleted_documented", "2016-07-22T15:11:08Z",
     "2016-07-01T00:00:00Z",
     event("1", "cancelled", "2016-07-22T15:10:08Z", "2016-07-21T03:45:00Z",
           "2016-07-21T04:30:00Z", client=Client(id="82"), therapist=P(id="1"), location="1")),
    ("individual_appointment__booked", "2026-11-20T09:15:00Z", "2026-11-01T00:00:00Z",
     event("1176000000000004501", "booked", "2026-11-20T09:12:44Z", "2026-11-26T14:00:00Z",
           "2026-11-26T15:00:00Z")),
    # Marked arrived as the visit began; read once it ended plus the grace: completed at
    # that moment, not at the earlier edit.
    ("individual_appointment__arrived", "2026-11-25T15:20:00Z", "2026-11-01T00:00:00Z",
     event("1176000000000004502", "completed", "2026-11-25T15:15:00Z",
           "2026-11-25T14:00:00Z", "2026-11-25T15:00:00Z", updated="2026-11-25T13:58:10Z")),
    ("individual_appointment__did_not_arrive", "2026-11-25T10:25:00Z", "2026-11-01T00:00:00Z",
     event("1176000000000004503", "no_show", "2026-11-25T10:20:31Z", "2026-11-25T10:00:00Z",
           "2026-11-25T11:00:00Z")),
    ("individual_appointment__cancelled", "2026-11-24T18:05:00Z", "2026-11-01T00:00:00Z",
     event("1176000000000004504", "cancelled", "2026-11-24T18:03:00Z", "2026-11-25T16:00:00Z",
           "2026-11-25T17:00:00Z")),
    ("individual_appointment__archived", "2026-11-25T09:45:00Z", "2026-11-01T00:00:00Z",
     event("1176000000000004505", "cancelled", "2026-11-25T09:41:27Z", "2026-11-25T12:00:00Z",
           "2026-11-25T13:00:00Z")),
    ("individual_appointment__no_patient", "2026-11-24T08:05:00Z", "2026-11-01T00:00:00Z",
     "the appointment has no patient"),
]


def delivered(name: str, fetched: str, since: str | None, *, grace=GRACE) -> InboundRequest:
    record = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return delivery(record, fetched_at=at(fetched), since=at(since) if since else None,
                    grace=grace)


def test_every_appointment_fixture_has_a_case():
    recorded = {p.stem for p in FIXTURES.glob("individual_appointment__*.json")}
    assert recorded == {case[0] for case in CASES}


@pytest.mark.parametrize(("name", "fetched", "since", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_parse(name, fetched, since, expected):
    request = delivered(name, fetched, since)
    if isinstance(expected, str):
        with pytest.raises(IgnoredEvent) as ignored:
            PLATFORM.parse(request)
        assert ignored.value.reason == expected
        assert ignored.value.event_type == "individual_appointment"
        return
    assert PLATFORM.parse(request) == [expected]
    assert PLATFORM.delivery_id(request) == expected.event_id


def test_an_ended_visit_read_within_the_grace_is_still_booked():
    request = delivered("individual_appointment__arrived", "2026-11-25T15:10:00Z",
                        "2026-11-01T00:00:00Z")
    [found] = parse(request)
    assert found.status == "booked"
    assert found.occurred_at == at("2026-11-25T13:58:10Z")


def test_a_visit_that_ended_before_the_clinic_connected_is_ignored_whatever_its_state():
    for name in ("individual_appointment__arrived", "individual_appointment__cancelled",
                 "individual_appointment__did_not_arrive"):
        request = delivered(name, "2026-11-28T09:00:00Z", "2026-11-27T00:00:00Z")
        with pytest.raises(IgnoredEvent, match="before Rapport was connected"):
            parse(request)


def test_a_visit_first_read_more_than_two_days_after_it_ended_gets_no_check_in():
    request = delivered("individual_appointment__arrived", "2026-11-27T15:16:00Z",
                        "2026-11-01T00:00:00Z")
    with pytest.raises(IgnoredEvent, match="more than two days after it ended"):
        parse(request)
    # Two days (and the grace) exactly is still in time.
    [found] = parse(delivered("individual_appointment__arrived", "2026-11-27T15:15:00Z",
                              "2026-11-01T00:00:00Z"))
    assert found.status == "completed"


def test_delivery_id_is_stable_for_one_version_and_new_for_an_edit_or_an_end():
    first = delivered("individual_appointment__booked", "2026-11-20T09:15:00Z", None)
    again = delivered("individual_appointment__booked", "2026-11-21T17:40:00Z", None)
    assert delivery_id(first) == delivery_id(again) == (
        "cliniko:1176000000000004501:2026-11-20T09:12:44Z:booked")

    record = json.loads(first.body)
    edited = delivery({**record, "updated_at": "2026-11-22T08:00:00Z",
                       "starts_at": "2026-11-27T14:00:00Z", "ends_at": "2026-11-27T15:00:00Z"},
                      fetched_at=at("2026-11-22T08:02:00Z"), since=None, grace=GRACE)
    assert delivery_id(edited) == "cliniko:1176000000000004501:2026-11-22T08:00:00Z:booked"

    # The same version read again once over: a new delivery, though Cliniko changed nothing.
    ended = delivery(record, fetched_at=at("2026-11-26T15:20:00Z"), since=None, grace=GRACE)
    assert delivery_id(ended) == "cliniko:1176000000000004501:2026-11-20T09:12:44Z:completed"
    assert len({delivery_id(first), delivery_id(edited), delivery_id(ended)}) == 3


def test_a_malformed_body_is_named_by_a_digest_so_it_is_stored_and_refused_with_its_field():
    request = InboundRequest(body=b'{"id": "12", "updated_at": "soon"}',
                             headers={FETCHED_AT: "2026-11-20T09:15:00Z"})
    assert delivery_id(request).startswith("cliniko:body:")
    assert delivery_id(request) == delivery_id(InboundRequest(body=request.body,
                                                              headers=request.headers))
    with pytest.raises(PayloadError) as refused:
        parse(request)
    assert refused.value.field == "updated_at"


VALID = json.loads((FIXTURES / "individual_appointment__booked.json").read_text())
MALFORMED = [
    (b"not json", {}, "body"),
    (b"[1, 2]", {}, "body"),
    (json.dumps({**VALID, "id": "A-100"}).encode(), {}, "id"),
    (json.dumps({**VALID, "id": True}).encode(), {}, "id"),
    (json.dumps({k: v for k, v in VALID.items() if k != "ends_at"}).encode(), {}, "ends_at"),
    (json.dumps({**VALID, "starts_at": None}).encode(), {}, "starts_at"),
    (json.dumps({**VALID, "ends_at": "2026-11-26T13:00:00Z"}).encode(), {}, "ends_at"),
    (json.dumps({**VALID, "did_not_arrive": "perhaps"}).encode(), {}, "did_not_arrive"),
    (json.dumps({**VALID, "patient": {"links": {}}}).encode(), {}, "patient.links.self"),
    (json.dumps({**VALID, "patient": {"links": {"self": "https://x/patients/me"}}}).encode(),
     {}, "patient.links.self"),
    (json.dumps({**VALID, "patient": "82"}).encode(), {}, "patient"),
    (json.dumps(VALID).encode(), {FETCHED_AT: "yesterday"}, FETCHED_AT),
    (json.dumps(VALID).encode(), {FETCHED_AT: None}, FETCHED_AT),
    (json.dumps(VALID).encode(), {"x-rapport-grace-minutes": "-5"}, "x-rapport-grace-minutes"),
    (json.dumps(VALID).encode(), {"x-rapport-since": "Tuesday"}, "x-rapport-since"),
]


@pytest.mark.parametrize(("body", "headers", "field"), MALFORMED,
                         ids=[case[2] + str(n) for n, case in enumerate(MALFORMED)])
def test_malformed_deliveries_raise_payload_error_naming_the_field(body, headers, field):
    given = {FETCHED_AT: "2026-11-20T09:15:00Z", **headers}
    request = InboundRequest(body=body, headers={k: v for k, v in given.items() if v})
    with pytest.raises(PayloadError) as refused:
        PLATFORM.parse(request)
    assert refused.value.field == field
    assert PLATFORM.delivery_id(request).startswith("cliniko:body:")
