"""Which questionnaire a clinic uses, and where instrument files are found.

The shipped instruments live in ``questionnaires/instruments``; a clinic that holds a
licence for another instrument puts its file in the folder named by
``QUESTIONNAIRES_DIR`` (``RAPPORT_QUESTIONNAIRES_DIR`` or ``rapport.cfg``). By default a
client answers ``rapport-checkin`` for the first three visits with a therapist, then the
shorter ``rapport-pulse``; ``clinic.settings["instrument"]`` changes that
(``rapport clinic configure``; docs/configuration.md).

A wrong or clashing file in the clinic's folder is skipped, logged once as
``instruments.file-skipped`` and listed by :func:`problems`: every other instrument,
the shipped ones first, keeps working. A clinic whose chosen instrument is unavailable
is sent the shipped default (``instruments.fallback`` in the log) until the file is
fixed and Rapport restarted.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.store.models import Appointment, Clinic
from questionnaires import SHIPPED_DIR, Instrument, InstrumentRegistry
from questionnaires.errors import format_error

log = logging.getLogger(__name__)

DEFAULT_POLICY = {"early": "rapport-checkin", "early_visits": 3, "later": "rapport-pulse"}


def directories(extra_dir: str | None) -> list[Path]:
    """The folders Rapport loads instruments from: the shipped one, then the clinic's."""
    return [Path(SHIPPED_DIR), Path(extra_dir)] if extra_dir else [Path(SHIPPED_DIR)]


@cache
def _registry(extra_dir: str | None) -> InstrumentRegistry:
    found = InstrumentRegistry(directories(extra_dir), skip_broken=True)
    for file, path, message in found.problems:
        log.error("instruments.file-skipped: %s (this file is not loaded until it is fixed "
                  "and Rapport restarted)", format_error(file, path, message),
                  extra={"file": file, "path": path, "problem": message})
    return found


def registry() -> InstrumentRegistry:
    return _registry(current_app.config.get("QUESTIONNAIRES_DIR"))


def problems() -> list[str]:
    """Why instrument files were skipped, one line each (``file: path: what is wrong``),
    for the health page; empty when every file loaded."""
    return [format_error(*problem) for problem in registry().problems]


def get(instrument_id: str) -> Instrument:
    found = registry()
    if instrument_id not in found and found.problems:
        skipped = ", ".join(sorted({file for file, _, _ in found.problems}))
        known = ", ".join(sorted(i.id for i in found.all()))
        raise KeyError(f"no instrument '{instrument_id}' (known: {known}; files skipped as "
                       f"broken: {skipped})")
    return found.get(instrument_id)


def available(instrument_id: str, *, clinic_id: int | None = None) -> Instrument:
    """The instrument, or, when its file is broken or gone, the shipped check-in, so a
    client holding a link still gets a form (their answers are stored against what they
    saw)."""
    found = registry()
    if instrument_id in found:
        return found.get(instrument_id)
    fallback = DEFAULT_POLICY["early"]
    log.error("instruments.fallback: clinic %s: instrument %r is not available; using %r",
              clinic_id, instrument_id, fallback,
              extra={"clinic_id": clinic_id, "instrument": instrument_id, "used": fallback})
    return found.get(fallback)


def policy_of(settings: dict | None) -> dict:
    chosen = (settings or {}).get("instrument")
    if isinstance(chosen, str):
        return {"early": chosen, "early_visits": 0, "later": chosen}
    return {**DEFAULT_POLICY, **(chosen or {})}


def policy(clinic: Clinic) -> dict:
    return policy_of(clinic.settings)


def choose(db: Session, clinic: Clinic, appointment: Appointment) -> str:
    """The instrument for this visit: early visits with a therapist get the longer one.

    When the clinic's choice cannot be loaded (its file is broken or gone), the shipped
    default policy chooses instead, and the log says so."""
    completed_before = db.scalar(select(func.count(Appointment.id)).where(
        Appointment.clinic_id == clinic.id,
        Appointment.client_external_id == appointment.client_external_id,
        Appointment.therapist_id == appointment.therapist_id,
        Appointment.status == "completed",
        Appointment.id != appointment.id,
    )) or 0

    def by(rules: dict) -> str:
        return rules["early"] if completed_before < rules["early_visits"] else rules["later"]

    chosen = by(policy(clinic))
    if chosen in registry():
        return chosen
    fallback = by(DEFAULT_POLICY)
    log.error("instruments.fallback: clinic %s chose %r, which is not available; sending %r "
              "instead (see `rapport questionnaires check`)", clinic.id, chosen, fallback,
              extra={"clinic_id": clinic.id, "instrument": chosen, "used": fallback})
    return fallback
