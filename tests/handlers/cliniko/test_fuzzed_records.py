"""Cliniko sends no webhooks, so the fuzz of the endpoints (tests/flows/test_fuzz.py)
cannot reach it: here the appointments a poll lists, mutated the same way
(tests/support/fuzzing.py), are read as the inbox reads them. A record is read, or
refused by a PayloadError naming the field, or ignored; nothing else is raised."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.base import IgnoredEvent, InboundRequest, PayloadError
from handlers.cliniko import deliveries
from tests.support.fuzzing import YEARS, damaged, json_body, json_fixtures

HEADERS = st.fixed_dictionaries({
    deliveries.FETCHED_AT: st.one_of(st.just("2026-11-25T15:00:00Z"), YEARS),
    deliveries.GRACE_MINUTES: st.sampled_from(["30", "0", "-5", "9" * 30, "x", ""]),
    deliveries.SINCE: st.one_of(st.just("2026-01-01T00:00:00Z"), YEARS),
})


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(json_body(json_fixtures("cliniko")).flatmap(damaged), HEADERS)
def test_a_mutated_record_is_read_or_refused_by_name(body, headers):
    request = InboundRequest(body=body, headers=headers)
    assert deliveries.delivery_id(request)
    try:
        deliveries.parse(request)
    except PayloadError as error:
        assert error.field
    except IgnoredEvent:
        pass
