"""Fixtures for the Acuity adapter's tests: recorded deliveries and appointments, signing,
a local Acuity, and Rapport's note for a real assessment.

Names start with ``acuity_`` so they never shadow the project's own fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers import acuity
from handlers.base import InboundRequest, Note
from questionnaires import (
    NOTE_BLOCK_END,
    NOTE_BLOCK_START,
    SHIPPED_DIR,
    InstrumentRegistry,
    PastResult,
    assess,
    note_parts,
    render_parts,
    score,
)
from tests.sandboxes.acuity import AcuitySandbox
from tests.support.sample_check_in import ANSWERS, VISIT

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "acuity"
API_KEY = "k1-acuity-api-key-0001"


@pytest.fixture
def acuity_body():
    def load(name: str) -> bytes:
        return (FIXTURES / f"{name}.txt").read_bytes()

    return load


@pytest.fixture
def acuity_json():
    def load(name: str) -> dict:
        return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))

    return load


@pytest.fixture
def acuity_keys() -> dict:
    """What Rapport keeps for a clinic: its user ID and API key."""
    return {"user_id": "11145481", "api_key": API_KEY, "previous_api_keys": []}


@pytest.fixture
def acuity_request():
    """A delivery as Acuity would post ``body``, signed with ``key``."""

    def make(body: bytes, *, key: str = API_KEY) -> InboundRequest:
        return InboundRequest(body=body, headers=acuity.sign(body, api_key=key))

    return make


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "acuity_refusals: the test makes the Acuity stand-in refuse requests")


@pytest.fixture
def acuity_stand_in(request):
    """A running Acuity stand-in. Afterwards: no request Rapport sent was one the
    specification refuses (unless the test is about refusals), and every answer the
    stand-in gave was inside the specification (checked on leaving it)."""
    with AcuitySandbox() as stand_in:
        yield stand_in
        if request.node.get_closest_marker("acuity_refusals") is None:
            assert [(r.method, r.path, why) for r, why in stand_in.rejected] == []


@pytest.fixture
def acuity_creds(acuity_stand_in) -> dict:
    return acuity_stand_in.credentials()


@pytest.fixture
def acuity_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def acuity_visit(acuity_stand_in, acuity_now):
    """A visit that ended an hour ago, and what the write-back is aimed at."""
    booked = acuity_stand_in.seed_appointment(
        start=acuity_now - timedelta(hours=2), phone="555-0100",
        notes="Prefers firm pressure.\r\nAvoid the left knee.\n")
    return booked


@pytest.fixture(scope="session")
def acuity_instrument():
    return InstrumentRegistry([SHIPPED_DIR]).get("rapport-checkin")


@pytest.fixture
def acuity_note(acuity_instrument):
    """Rapport's note for a real assessment, rendered by the questionnaires package and able
    to render itself shorter (what the write-back job hands an adapter)."""

    def build(*, comment: str | None = None) -> Note:
        start = datetime(2026, 9, 1, 15, tzinfo=UTC)
        past = [PastResult(start + timedelta(weeks=i), "T-1", "rapport-checkin", value, {},
                           False) for i, value in enumerate((85.0, 90.0, 80.0))]
        assessment = assess(acuity_instrument, score(acuity_instrument, ANSWERS), ANSWERS,
                            comment, past, past, language="en")
        parts = note_parts(assessment, language="en", visit_date=VISIT,
                           therapist_name="Dana Ruiz")
        return Note(
            text=render_parts(parts, acuity.NOTE_LIMIT),
            block_start=NOTE_BLOCK_START,
            block_end=NOTE_BLOCK_END,
            summary={},
            talking_points=tuple(assessment.talking_points),
            render=lambda limit: render_parts(parts, limit),
        )

    return build
