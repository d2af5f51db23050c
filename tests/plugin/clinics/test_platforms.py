"""A platform's settings, read from the configuration: Square's signature keys (one, or a
JSON list) and its environment, refused at startup when they cannot be right."""

from __future__ import annotations

import json

import pytest

from handlers import square
from tests.sandboxes.square import SquareSandbox
from tests.support.square import NOW


def test_signature_keys_given_as_a_json_list_each_verify(monkeypatch, app_factory):
    """Rotating a hand-made subscription's key: both keys in the environment, as JSON."""
    monkeypatch.setenv("RAPPORT_SQUARE_WEBHOOK_SIGNATURE_KEY", '["old-key", "new-key"]')
    app = app_factory()
    seller = SquareSandbox(merchant_id="MLNOTCONNECTED")  # its events only; no server
    customer = seller.seed_customer()
    booking = seller.seed_booking(customer_id=customer["id"], start_at=NOW)
    payload = json.dumps(seller.booking_event("booking.created", booking["id"])).encode()

    def post(key):
        headers = square.sign(payload, signature_key=key,
                              notification_url="http://rapport.test/webhooks/square")
        return app.test_client().post("/webhooks/square", data=payload, headers=headers)

    assert [post(key).status_code for key in ("old-key", "new-key", "other")] == [200, 200, 401]


@pytest.mark.parametrize("value", ['{"key": "k"}', "12345", '["k", 7]'])
def test_a_signature_key_setting_neither_a_key_nor_a_list_is_refused_at_startup(
    monkeypatch, app_factory, value
):
    from plugin.config import ConfigurationError

    monkeypatch.setenv("RAPPORT_SQUARE_WEBHOOK_SIGNATURE_KEY", value)
    with pytest.raises(ConfigurationError, match="RAPPORT_SQUARE_WEBHOOK_SIGNATURE_KEY must be"):
        app_factory()


def test_an_unknown_square_environment_is_refused_at_startup(monkeypatch, app_factory):
    from plugin.config import ConfigurationError

    monkeypatch.setenv("RAPPORT_SQUARE_ENVIRONMENT", "staging")
    with pytest.raises(ConfigurationError, match="RAPPORT_SQUARE_ENVIRONMENT is 'staging'"):
        app_factory()
