"""A Cliniko clinic in Rapport, polled against the local Cliniko on the stand-in's clock.

The stand-in's clock starts a few hours before the real time, and the clinic is taken as
connected at the stand-in's "now": visits then happen, end and are polled on the
stand-in's clock, always before the real time, so check-ins (planned on the real clock)
go out at once and answers come after the visits they are about.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from plugin.clinics import connecting
from plugin.pipeline import polling
from plugin.store import database
from plugin.store.models import CheckIn, Clinic, PollState
from plugin.tasks import worker
from tests.sandboxes.cliniko import CONTACT_EMAIL, ClinikoSandbox
from tests.sandboxes.cliniko_state import Clock

ALWAYS_OPEN = {"send_delay_minutes": 0, "window_start": "00:00", "window_end": "24:00"}
HOURS_BEHIND = 6


@pytest.fixture
def cliniko():
    """The local Cliniko, its clock some hours behind the real time."""
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=HOURS_BEHIND)
    with ClinikoSandbox(clock=Clock(start)) as sandbox:
        yield sandbox


def cliniko_config(sandbox: ClinikoSandbox, **extra) -> dict:
    """Rapport's installation settings for the stand-in."""
    return {"CLINIKO_CONTACT_EMAIL": CONTACT_EMAIL,
            "CLINIKO_BASE_URL": sandbox.settings()["base_url"], **extra}


@pytest.fixture
def cliniko_app(app_factory, cliniko):
    return app_factory(**cliniko_config(cliniko))


@pytest.fixture
def cliniko_clinic(cliniko_app, cliniko):
    """A Cliniko clinic connected now (on the stand-in's clock), sending at once."""
    return connect(cliniko_app, cliniko)


def connect(app, sandbox: ClinikoSandbox, *, api_key: str | None = None,
            timing: dict | None = None) -> dict:
    """Add the clinic as ``rapport clinic add --platform cliniko`` does, connected at the
    stand-in's present moment."""
    with app.app_context():
        added = connecting.add(name="Harbour Massage", platform_name="cliniko",
                               given={"api_key": api_key or sandbox.api_key},
                               timezone="Europe/London", language="en")
        with database.session() as db:
            row = db.get(Clinic, added.clinic_id)
            row.created_at = sandbox.clock.now()
            row.settings = {**(row.settings or {}), "timing": {**ALWAYS_OPEN, **(timing or {})}}
    return {"id": added.clinic_id, "key": added.shown["key"]}


def poll(app, sandbox: ClinikoSandbox, generic_clinic: dict, **options) -> polling.Outcome:
    """One poll of the clinic, as seen at the stand-in's present moment."""
    with app.app_context():
        return polling.poll(generic_clinic["id"], now=sandbox.clock.now(), **options)


def poll_until_quiet(app, sandbox: ClinikoSandbox, generic_clinic: dict) -> list[polling.Outcome]:
    """Poll until nothing more is waiting, moving the stand-in's clock to each next poll
    as the seam paced it."""
    outcomes = [poll(app, sandbox, generic_clinic, force=True)]
    while outcomes[-1].more:
        assert len(outcomes) < 200, "the polls never finished"
        wait = outcomes[-1].next_poll_at - sandbox.clock.now()
        sandbox.clock.advance(seconds=wait.total_seconds())
        outcomes.append(poll(app, sandbox, generic_clinic))
    return outcomes


def drain(app) -> None:
    with app.app_context():
        worker.drain(forking=False)


def state(app, generic_clinic: dict) -> PollState | None:
    with app.app_context(), database.session() as db:
        return db.get(PollState, generic_clinic["id"])


def check_ins(app) -> list[CheckIn]:
    with app.app_context(), database.session() as db:
        return list(db.scalars(select(CheckIn).order_by(CheckIn.id)))
