"""Fixtures for the Cliniko adapter's tests: recorded appointments and patients, a local
Cliniko (:mod:`tests.sandboxes.cliniko`), credentials pointing at it, and Rapport's note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handlers.base import Note
from handlers.cliniko import PLATFORM
from tests.sandboxes.cliniko import ClinikoSandbox

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cliniko"
START, END = "[Rapport]", "[/Rapport]"


def _make_note(score: int = 82, points: tuple[str, ...] = (
        "Ask how the shoulder felt in the days after.",
        "Check the pressure was right: they hesitated on that question.")) -> Note:
    """Rapport's note as the write-back job hands it over: the block, and a renderer that
    drops talking points to fit a smaller room (never cutting a word)."""

    def render(limit: int) -> str:
        for kept in range(len(points), -1, -1):
            text = "\n".join([START, f"Alliance {score}/100", *(f"- {p}" for p in points[:kept]),
                              END])
            if len(text) <= limit:
                return text
        raise ValueError("does not fit")

    return Note(text=render(10_000), block_start=START, block_end=END,
                summary={"scores": {"overall": score}}, talking_points=points, render=render)


@pytest.fixture
def cliniko_record():
    """A recorded Cliniko record, by fixture name (``individual_appointment__booked``)."""

    def load(name: str) -> dict:
        return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))

    return load


@pytest.fixture
def cliniko_note():
    """``rapport_note(score=…, points=…)``: Rapport's note for one client."""
    return _make_note


@pytest.fixture
def cliniko_sandbox():
    with ClinikoSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def cliniko_creds(cliniko_sandbox) -> dict:
    """A clinic's credentials as the caller builds them: its sealed API key, the
    installation's settings (pointed at the stand-in), and a timeout."""
    return {**PLATFORM.api_context(cliniko_sandbox.settings()),
            "api_key": cliniko_sandbox.api_key, "timeout": 5}


@pytest.fixture
def cliniko_patient(cliniko_sandbox) -> dict:
    return cliniko_sandbox.seed_patient(first_name="Sam", last_name="Rivers",
                                        email="sam@example.com", notes="")
