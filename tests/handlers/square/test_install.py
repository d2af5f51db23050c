"""Setting a seller's account up: the custom attribute's definition (created once,
whoever got there first) and the webhook subscription."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from handlers import square
from handlers.base import (
    PermanentError,
)
from tests.handlers.square.shared import NOW, note


def test_an_existing_definition_is_fine(square_sandbox, square_creds):
    body = {
        "idempotency_key": "made-by-an-earlier-install",
        "custom_attribute_definition": {
            "key": "rapport-alliance",
            "schema": {"$ref": square.STRING_SCHEMA},
            "visibility": "VISIBILITY_HIDDEN",
        },
    }
    headers = {"Authorization": f"Bearer {square_sandbox.personal_access_token}"}
    earlier = requests.post(
        square_sandbox.base_url + "/v2/customers/custom-attribute-definitions",
        json=body,
        headers=headers,
        timeout=5,
    )
    assert earlier.status_code == 200
    assert square.ensure_attribute_definition(square_creds)["key"] == "rapport-alliance"
    # Retrieved, not created again: one read, no second create.
    definitions = "/v2/customers/custom-attribute-definitions"
    assert len(square_sandbox.requests_to("POST", definitions)) == 1  # the earlier install's
    assert [r.status for r in square_sandbox.requests_to("GET",
                                                         f"{definitions}/rapport-alliance")] == [
        200
    ]


def test_connecting_again_reads_the_definition_instead_of_creating_it(square_sandbox, square_creds):
    square.ensure_attribute_definition(square_creds)
    square.ensure_attribute_definition(square_creds)
    assert len(square_sandbox.requests_to("POST",
                                          "/v2/customers/custom-attribute-definitions")) == 1


@pytest.mark.parametrize("refusal", [(409, "CONFLICT"), (400, "BAD_REQUEST")])
def test_a_definition_created_meanwhile_is_success_however_square_refuses_the_duplicate(
    square_sandbox, square_creds, refusal
):
    """Square does not document its answer to a duplicate key: whatever it is, the
    definition being there afterwards is what counts."""
    square_sandbox.duplicate_definition = refusal
    definitions = "/v2/customers/custom-attribute-definitions"
    # Another worker defines it between Rapport's read and its create.
    square_sandbox.before_next("POST", definitions, lambda: square_sandbox.definitions.setdefault(
        "rapport-alliance", {"key": "rapport-alliance", "name": "Rapport alliance",
                             "description": "d", "schema": {"$ref": square.STRING_SCHEMA},
                             "visibility": "VISIBILITY_READ_ONLY", "version": 1}))
    assert square.ensure_attribute_definition(square_creds)["key"] == "rapport-alliance"
    assert [r.status for r in square_sandbox.requests_to("POST", definitions)] == [refusal[0]]


def test_a_create_refused_for_another_reason_is_still_an_error(square_sandbox, square_creds):
    square_sandbox.fail_next("/v2/customers/custom-attribute-definitions", 400, method="POST",
                             code="INVALID_VALUE")
    with pytest.raises(PermanentError, match="INVALID_VALUE"):
        square.ensure_attribute_definition(square_creds)


def test_subscribe_registers_booking_events_and_revocations(square_sandbox, square_creds):
    url = "https://rapport.example/webhooks/square/clinic-7"
    subscription = square.subscribe(square_creds, url)
    assert subscription["signature_key"] and subscription["subscription_id"].startswith("wbhk_")
    assert subscription["event_types"] == ["booking.created", "booking.updated",
                                           "oauth.authorization.revoked"]
    assert square.subscribe(square_creds, url) == subscription
    assert len(square_sandbox.subscriptions) == 1
    assert square_sandbox.subscriptions[0]["notification_url"] == url


def test_the_contract_holds_for_everything_rapport_sent(square_sandbox, square_creds,
                                                        square_customer, square_target):
    """The sandbox validates each body against Square's spec; none was refused."""
    booking = square_sandbox.seed_booking(customer_id=square_customer["id"],
                                          start_at=NOW + timedelta(days=1))
    square.ensure_attribute_definition(square_creds)
    square.write_back(square_creds, square_target, note())
    square.write_seller_note(square_creds, booking["id"], note())
    square.subscribe(square_creds, "https://rapport.example/webhooks/square/clinic-7")
    square.fetch_appointment(square_creds, booking["id"])
    assert square_sandbox.rejected == []
    # The only non-200: the definition looked up before it was created.
    assert [(r.method, r.path, r.status) for r in square_sandbox.requests if r.status != 200] == [
        ("GET", "/v2/customers/custom-attribute-definitions/rapport-alliance", 404)
    ]
