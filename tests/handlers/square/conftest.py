"""Fixtures for the Square adapter's tests: recorded events, signing, a local Square, and
Rapport's note for a real assessment. Names start with ``square_`` (the local Square
itself is the project-wide ``square_sandbox``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers import square
from handlers.base import InboundRequest, WriteBackTarget
from plugin.pipeline.assessment import note_of, wire_summary
from questionnaires import SHIPPED_DIR, InstrumentRegistry, PastResult, assess, render_note, score
from questionnaires.note import note_parts
from tests.support.sample_check_in import ANSWERS, VISIT

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "square"
NOTIFICATION_URL = "https://rapport.example/webhooks/square/clinic-7"
SIGNATURE_KEY = "k1-Square-signature-key"


@pytest.fixture
def square_fixture():
    def load(name: str) -> bytes:
        return (FIXTURES / f"{name}.json").read_bytes()

    return load


@pytest.fixture
def square_secrets() -> dict:
    """What Rapport stores for a clinic's subscription: its key(s) and exact URL."""
    return {"signature_keys": [SIGNATURE_KEY], "notification_url": NOTIFICATION_URL}


@pytest.fixture
def square_delivery():
    """A request as Square would deliver ``body`` to the clinic's notification URL."""

    def make(body: bytes, *, key: str = SIGNATURE_KEY, url: str = NOTIFICATION_URL):
        headers = square.sign(body, signature_key=key, notification_url=url)
        return InboundRequest(body=body, headers=headers)

    return make


@pytest.fixture
def square_creds(square_sandbox) -> dict:
    return square_sandbox.credentials()


@pytest.fixture
def square_customer(square_sandbox):
    """Sam, a customer in the local Square."""
    return square_sandbox.seed_customer(given_name="Sam", email_address="sam@example.com")


@pytest.fixture
def square_target(square_customer):
    """What a write-back for Sam's visit is aimed at."""
    return WriteBackTarget(client_id=square_customer["id"], appointment_id="visit-1")


@pytest.fixture
def square_attribute_definition(square_creds):
    """Rapport's custom attribute, defined in the seller's account."""
    square.ensure_attribute_definition(square_creds)


@pytest.fixture(scope="session")
def checkin_instrument():
    return InstrumentRegistry([SHIPPED_DIR]).get("rapport-checkin")


@pytest.fixture
def square_note(checkin_instrument):
    """The Note the write-back job hands Square for a real assessment: built by
    ``plugin.writeback.note_of`` from what ``assessment_for`` stores (the wire summary,
    the talking points, the note rendered to Square's limit and its parts)."""

    def build(*, language="en", comment=None, answers=ANSWERS, history=(85.0, 90.0, 80.0)):
        start = datetime(2026, 9, 1, 15, tzinfo=UTC)
        past = [
            PastResult(start + timedelta(weeks=i), "T-1", "rapport-checkin", value, {}, False)
            for i, value in enumerate(history)
        ]
        assessment = assess(checkin_instrument, score(checkin_instrument, answers), answers,
                            comment, past, past,
                            language=language)
        where = {"language": language, "visit_date": VISIT, "therapist_name": "Dana Ruiz"}
        return note_of({
            "summary": wire_summary(assessment.to_dict()),
            "talking_points": assessment.talking_points,
            "note": render_note(assessment, limit=square.NOTE_LIMIT, **where),
            "note_parts": note_parts(assessment, **where),
        })

    return build
