"""Which questionnaire a clinic uses, and where instrument files are found.

The shipped instruments live in ``questionnaires/instruments``; a clinic that holds a
licence for another instrument puts its file in ``RAPPORT_QUESTIONNAIRES_DIR``. By
default a client answers ``rapport-checkin`` for the first three visits with a
therapist, then the shorter ``rapport-pulse``; ``clinic.settings["instrument"]``
changes that (see README, "Per-clinic settings").
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.models import Appointment, Clinic
from questionnaires import SHIPPED_DIR, Instrument, InstrumentRegistry

DEFAULT_POLICY = {"early": "rapport-checkin", "early_visits": 3, "later": "rapport-pulse"}


@cache
def _registry(extra_dir: str | None) -> InstrumentRegistry:
    directories = [Path(SHIPPED_DIR)]
    if extra_dir:
        directories.append(Path(extra_dir))
    return InstrumentRegistry(directories)


def registry() -> InstrumentRegistry:
    return _registry(current_app.config.get("QUESTIONNAIRES_DIR"))


def get(instrument_id: str) -> Instrument:
    return registry().get(instrument_id)


def policy_of(settings: dict | None) -> dict:
    chosen = (settings or {}).get("instrument")
    if isinstance(chosen, str):
        return {"early": chosen, "early_visits": 0, "later": chosen}
    return {**DEFAULT_POLICY, **(chosen or {})}


def policy(clinic: Clinic) -> dict:
    return policy_of(clinic.settings)


def choose(db: Session, clinic: Clinic, appointment: Appointment) -> str:
    """The instrument for this visit: early visits with a therapist get the longer one."""
    rules = policy(clinic)
    completed_before = db.scalar(select(func.count(Appointment.id)).where(
        Appointment.clinic_id == clinic.id,
        Appointment.client_external_id == appointment.client_external_id,
        Appointment.therapist_id == appointment.therapist_id,
        Appointment.status == "completed",
        Appointment.id != appointment.id,
    )) or 0
    return rules["early"] if completed_before < rules["early_visits"] else rules["later"]
