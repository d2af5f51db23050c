"""Fixtures for the Mindbody adapter's tests: recorded events, signing, and a local
Mindbody (tests/sandboxes/mindbody.py) reached over real HTTP. Names start with ``mb_``
so they never shadow the project's own fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers import mindbody
from handlers.base import InboundRequest
from handlers.mindbody import api
from tests.handlers.mindbody.shared import FIXTURES, SIGNATURE_KEY
from tests.sandboxes.mindbody import MindbodySandbox


@pytest.fixture
def mb_fixture():
    def load(name: str) -> bytes:
        return (FIXTURES / f"{name}.json").read_bytes()

    return load


@pytest.fixture
def mb_signed():
    """A request as Mindbody delivers ``body``, signed with ``key``."""

    def make(body: bytes, *, key: str = SIGNATURE_KEY) -> InboundRequest:
        return InboundRequest(body=body, headers=mindbody.sign(body, signature_key=key))

    return make


@pytest.fixture
def mb_sandbox():
    api.forget_tokens()
    with MindbodySandbox() as sandbox:
        yield sandbox
    api.forget_tokens()


@pytest.fixture
def mb_creds(mb_sandbox) -> dict:
    return mb_sandbox.credentials()


@pytest.fixture
def mb_client(mb_sandbox) -> dict:
    return mb_sandbox.seed_client(-99, first_name="Sam", email="sam@example.com",
                                  notes="Prefers firm pressure.")


@pytest.fixture
def mb_next_visit(mb_sandbox, mb_client) -> dict:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    return mb_sandbox.seed_appointment(-99, client_id=mb_client["Id"], start=start)
