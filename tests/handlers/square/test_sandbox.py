"""The Square sandbox holds requests to Square's spec, and itself too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from tests.sandboxes.openapi import contract
from tests.sandboxes.square import SquareSandbox


def call(square_sandbox, method, path, body=None, **headers):
    headers = {"Authorization": f"Bearer {square_sandbox.personal_access_token}", **headers}
    return requests.request(method, square_sandbox.base_url + path, json=body, headers=headers,
                            timeout=5)


@pytest.mark.parametrize(
    "body, code, field",
    [
        ({"note": 5}, "INCORRECT_TYPE", "note"),
        ({"notes": "typo"}, "UNKNOWN_BODY_PARAMETER", ""),
        ({"note": "x", "version": "3"}, "INCORRECT_TYPE", "version"),
    ],
)
def test_a_body_that_breaks_the_spec_is_refused_naming_the_field(square_sandbox, body, code, field):
    customer = square_sandbox.seed_customer()
    answer = call(square_sandbox, "PUT", f"/v2/customers/{customer['id']}", body)
    assert answer.status_code == 400
    error = answer.json()["errors"][0]
    assert (error["category"], error["code"]) == ("INVALID_REQUEST_ERROR", code)
    assert error.get("field", "") == field
    assert len(square_sandbox.rejected) == 1
    assert square_sandbox.customer(customer["id"])["version"] == 0


def test_the_seller_note_limit_comes_from_the_spec(square_sandbox):
    customer = square_sandbox.seed_customer()
    booking = square_sandbox.seed_booking(customer_id=customer["id"],
                                          start_at="2026-12-01T10:00:00Z")
    body = {"booking": {"seller_note": "x" * 4097, "version": 0}}
    answer = call(square_sandbox, "PUT", f"/v2/bookings/{booking['id']}", body)
    assert answer.json()["errors"][0]["code"] == "VALUE_TOO_LONG"
    assert answer.json()["errors"][0]["field"] == "booking.seller_note"


def test_read_only_fields_must_not_be_sent(square_sandbox):
    customer = square_sandbox.seed_customer()
    booking = square_sandbox.seed_booking(customer_id=customer["id"],
                                          start_at="2026-12-01T10:00:00Z")
    body = {"booking": {"status": "CANCELLED_BY_SELLER", "version": 0}}
    error = call(square_sandbox, "PUT", f"/v2/bookings/{booking['id']}", body).json()["errors"][0]
    assert (error["field"], error["detail"]) == (
        "booking.status",
        "is read-only and must not be sent",
    )
    assert square_sandbox.booking(booking["id"])["status"] == "ACCEPTED"


def test_a_stale_version_is_a_version_mismatch(square_sandbox):
    customer = square_sandbox.seed_customer()
    square_sandbox.update_customer(customer["id"], note="edited in the Dashboard")
    answer = call(square_sandbox, "PUT", f"/v2/customers/{customer['id']}", {"note": "x",
                                                                             "version": 0})
    assert answer.status_code == 409
    assert answer.json()["errors"][0]["code"] == "VERSION_MISMATCH"


def test_an_idempotency_key_replays_and_refuses_reuse(square_sandbox):
    body = {"idempotency_key": "sub-1", "subscription": {"event_types": ["booking.created"],
            "notification_url": "https://rapport.example/hook"}}  # fmt: skip
    first = call(square_sandbox, "POST", "/v2/webhooks/subscriptions", body).json()
    again = call(square_sandbox, "POST", "/v2/webhooks/subscriptions", body).json()
    assert first == again and len(square_sandbox.subscriptions) == 1
    body["subscription"]["notification_url"] = "https://rapport.example/other"
    reused = call(square_sandbox, "POST", "/v2/webhooks/subscriptions", body)
    assert reused.json()["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_unknown_event_types_are_refused(square_sandbox):
    body = {"subscription": {"event_types": ["booking.create"], "notification_url": "https://x"}}
    answer = call(square_sandbox, "POST", "/v2/webhooks/subscriptions", body)
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (
        400,
        "subscription.event_types",
    )


def test_requests_need_a_token_and_a_well_formed_version(square_sandbox):
    customer = square_sandbox.seed_customer()
    path = f"/v2/customers/{customer['id']}"
    anonymous = requests.get(square_sandbox.base_url + path, timeout=5)
    assert anonymous.status_code == 401
    bad_version = call(square_sandbox, "GET", path, **{"Square-Version": "latest"})
    assert bad_version.json()["errors"][0]["code"] == "INVALID_SQUARE_VERSION_FORMAT"
    assert call(square_sandbox, "GET", "/v2/nothing-here").status_code == 404


def test_failures_are_injected_per_path_method_and_count(square_sandbox):
    customer = square_sandbox.seed_customer()
    path = f"/v2/customers/{customer['id']}"
    square_sandbox.fail_next("/v2/customers/", 503, times=2, method="GET",
                             headers={"Retry-After": "3"})
    first, second, third = (call(square_sandbox, "GET", path) for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["Retry-After"] == "3"
    assert first.json()["errors"][0]["code"] == "SERVICE_UNAVAILABLE"
    assert [r.status for r in square_sandbox.requests_to("GET", path)] == [503, 503, 200]


def test_booking_events_follow_squares_event_schema(square_sandbox):
    customer = square_sandbox.seed_customer()
    booking = square_sandbox.seed_booking(customer_id=customer["id"], start_at=datetime.now(UTC))
    square_sandbox.update_booking(booking["id"], status="CANCELLED_BY_CUSTOMER")
    event = square_sandbox.booking_event("booking.updated", booking["id"])
    assert event["data"]["id"] == f"{booking['id']}:1"
    assert event["data"]["object"]["booking"]["status"] == "CANCELLED_BY_CUSTOMER"
    spec = contract("platforms/square/api.json")
    assert spec.problems("BookingUpdatedEvent", event, request=False) == []


def test_the_sandbox_refuses_to_drift_from_the_spec():
    with pytest.raises(AssertionError, match="outside Square's spec"):  # noqa: SIM117
        with SquareSandbox() as drifting:
            customer = drifting.seed_customer()
            drifting.update_customer(customer["id"], given_name=["not", "a", "string"])
            call(drifting, "GET", f"/v2/customers/{customer['id']}")


def test_bookings_can_be_created_over_http(square_sandbox):
    customer = square_sandbox.seed_customer()
    body = {
        "idempotency_key": "book-1",
        "booking": {
            "start_at": "2026-12-02T09:00:00Z",
            "customer_id": customer["id"],
            "location_id": square_sandbox.location_id,
            "appointment_segments": [{"duration_minutes": 90, "team_member_id": "TMdanaRapport01"}],
        },
    }
    created = call(square_sandbox, "POST", "/v2/bookings", body).json()["booking"]
    assert (created["status"], created["version"]) == ("ACCEPTED", 0)
    assert square_sandbox.booking(created["id"])["start_at"] == "2026-12-02T09:00:00Z"
    missing = call(square_sandbox, "POST", "/v2/bookings", {"booking": {"start_at": "x"}}).json()
    assert missing["errors"][0]["code"] == "MISSING_REQUIRED_PARAMETER"
