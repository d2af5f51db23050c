"""Fixtures for the questionnaires package: shipped, licensed-from-template and test-only
instruments, and a builder for small instrument documents."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from questionnaires import SHIPPED_DIR, InstrumentRegistry, PastResult, load_instrument
from questionnaires.registry import TEMPLATE_SUFFIX

DATA = Path(__file__).parent / "data"
LICENSED = SHIPPED_DIR.parent / "licensed"
PLACEHOLDER = re.compile(r"<<[^<>]*>>")
"""How the templates mark each text a clinic must replace."""

MINIMAL = {
    "id": "mini",
    "version": 1,
    "languages": ["en", "fr"],
    "title": {"en": "Mini", "fr": "Mini"},
    "scale": {
        "min": 1,
        "max": 5,
        "labels": {1: {"en": "No", "fr": "Non"}, 5: {"en": "Yes", "fr": "Oui"}},
    },
    "subscales": [
        {"id": "goal", "title": {"en": "Goals", "fr": "Objectifs"}},
        {"id": "task", "title": {"en": "Tasks", "fr": "Tâches"}},
    ],
    "items": [
        {"id": "a", "subscale": "goal", "text": {"en": "A", "fr": "A"}},
        {"id": "b", "subscale": "goal", "text": {"en": "B", "fr": "B"}},
        {"id": "c", "subscale": "task", "text": {"en": "C", "fr": "C"}},
        {"id": "d", "subscale": "task", "text": {"en": "D", "fr": "D"}, "reverse": True},
    ],
    "scoring": {"method": "mean"},
}


@pytest.fixture
def minimal() -> dict:
    """A valid document to break one field at a time."""
    return copy.deepcopy(MINIMAL)


@pytest.fixture(scope="session")
def shipped() -> InstrumentRegistry:
    return InstrumentRegistry([SHIPPED_DIR])


@pytest.fixture(scope="session")
def checkin(shipped):
    return shipped.get("rapport-checkin")


@pytest.fixture(scope="session")
def pulse(shipped):
    return shipped.get("rapport-pulse")


@pytest.fixture(scope="session")
def care_like():
    return load_instrument(DATA / "care-like.yaml")


def licensed_copy(template: str, folder: Path) -> Path:
    """What a clinic does: copy a template under a loadable name and fill in wording."""
    text = (LICENSED / template).read_text(encoding="utf-8")
    target = folder / template.replace(TEMPLATE_SUFFIX, ".yaml")
    target.write_text(PLACEHOLDER.sub("dummy wording for tests", text), encoding="utf-8")
    return target


@pytest.fixture
def clinic_dir(tmp_path) -> Path:
    folder = tmp_path / "licensed"
    folder.mkdir()
    licensed_copy("wai-sr.template.yaml", folder)
    licensed_copy("srs.template.yaml", folder)
    return folder


@pytest.fixture
def clinic_registry(clinic_dir) -> InstrumentRegistry:
    return InstrumentRegistry([SHIPPED_DIR, clinic_dir])


@pytest.fixture
def visits():
    """Builds past results a week apart, oldest first: ``visits(80, 85, None)``."""

    def build(*overall, therapist="T-1", instrument="rapport-checkin", ceiling=False):
        start = datetime(2026, 9, 1, 15, tzinfo=UTC)
        return [
            PastResult(start + timedelta(weeks=i), therapist, instrument, value, {}, ceiling)
            for i, value in enumerate(overall)
        ]

    return build
