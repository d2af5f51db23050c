"""Fixtures for the Square adapter's tests: recorded events, signing, a local Square."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers import square
from handlers.base import InboundRequest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "square"
NOTIFICATION_URL = "https://rapport.example/webhooks/square/clinic-7"
SIGNATURE_KEY = "k1-Square-signature-key"


@pytest.fixture
def fixture_body():
    def load(name: str) -> bytes:
        return (FIXTURES / f"{name}.json").read_bytes()

    return load


@pytest.fixture
def clinic_secrets() -> dict:
    """What Rapport stores for a clinic's subscription: its key(s) and exact URL."""
    return {"signature_keys": [SIGNATURE_KEY], "notification_url": NOTIFICATION_URL}


@pytest.fixture
def signed():
    """A request as Square would deliver ``body`` to the clinic's notification URL."""

    def make(body: bytes, *, key: str = SIGNATURE_KEY, url: str = NOTIFICATION_URL):
        headers = square.sign(body, signature_key=key, notification_url=url)
        return InboundRequest(body=body, headers=headers)

    return make


@pytest.fixture
def sandbox(square_sandbox):
    """The local Square (the project-wide fixture, under the name these tests use)."""
    return square_sandbox


@pytest.fixture
def creds(sandbox) -> dict:
    return sandbox.credentials()
