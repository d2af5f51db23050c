"""Individual appointments: the status map, and fetch_appointment against the local
Cliniko (what Rapport re-reads at a visit's end)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from handlers.base import AuthError, PermanentError, Person, TransientError
from handlers.cliniko import PLATFORM, fetch_appointment, load, status_of

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cliniko"
HOUR = timedelta(hours=1)


def record(**changes):
    base = json.loads((FIXTURES / "individual_appointment__booked.json").read_text())
    return load({**base, **changes})


@pytest.mark.parametrize(("changes", "minutes_after_end", "status"), [
    ({}, -30, "booked"),
    ({}, 0, "completed"),
    ({"patient_arrived": True}, 5, "completed"),
    ({"did_not_arrive": True}, 5, "no_show"),
    ({"did_not_arrive": True}, -30, "no_show"),
    ({"cancelled_at": "2026-11-24T18:03:00Z"}, 5, "cancelled"),
    ({"cancelled_at": "2026-11-24T18:03:00Z", "did_not_arrive": True}, 5, "cancelled"),
    ({"archived_at": "2026-11-24T18:03:00Z"}, 5, "cancelled"),
    ({"deleted_at": "2026-11-24T18:03:00Z"}, -30, "cancelled"),
    ({"cancelled_at": ""}, 5, "completed"),  # an empty time is no time
])
def test_status_map(changes, minutes_after_end, status):
    found = record(**changes)
    assert status_of(found, found["ends_at"] + timedelta(minutes=minutes_after_end)) == status


def test_the_grace_holds_completion_back():
    found = record()
    grace = timedelta(minutes=15)
    assert status_of(found, found["ends_at"] + timedelta(minutes=14), grace) == "booked"
    assert status_of(found, found["ends_at"] + grace, grace) == "completed"


def test_fetch_appointment_reads_an_upcoming_visit_as_booked(cliniko_sandbox, cliniko_creds,
                                                             cliniko_patient):
    now = cliniko_sandbox.clock.now()
    made = cliniko_sandbox.seed_appointment(patient=cliniko_patient, starts_at=now + HOUR)
    found = fetch_appointment(cliniko_creds, made["id"], now=now)
    assert (found.status, found.appointment_id, found.client.id) == (
        "booked", made["id"], cliniko_patient["id"])
    assert (found.start, found.end) == (now + HOUR, now + 2 * HOUR)
    assert found.therapist == Person(id=cliniko_sandbox.practitioner_id)
    assert found.location_id == cliniko_sandbox.business_id
    assert found.occurred_at == made["updated_at"]
    assert [r.path for r in cliniko_sandbox.requests] == [f"/individual_appointments/{made['id']}"]


def test_fetch_appointment_reads_an_ended_visit_still_standing_as_completed(
        cliniko_sandbox, cliniko_creds, cliniko_patient):
    now = cliniko_sandbox.clock.now()
    made = cliniko_sandbox.seed_appointment(patient=cliniko_patient, starts_at=now - 2 * HOUR,
                                            updated_at=now - timedelta(days=1))
    found = fetch_appointment(cliniko_creds, made["id"], now=now)
    assert found.status == "completed"
    # Completed at its end: later than the booking's last change.
    assert found.occurred_at == made["ends_at"]
    assert found.event_id.endswith(":completed")


@pytest.mark.parametrize(("act", "status"), [("cancel", "cancelled"),
                                             ("mark_did_not_arrive", "no_show")])
def test_fetch_appointment_after_the_clinic_acted(cliniko_sandbox, cliniko_creds,
                                                  cliniko_patient, act, status):
    now = cliniko_sandbox.clock.now()
    made = cliniko_sandbox.seed_appointment(patient=cliniko_patient, starts_at=now - 2 * HOUR)
    getattr(cliniko_sandbox, act)(made["id"])
    assert fetch_appointment(cliniko_creds, made["id"], now=now).status == status


def test_an_archived_appointment_is_found_through_the_list(cliniko_sandbox, cliniko_creds,
                                                           cliniko_patient):
    now = cliniko_sandbox.clock.now()
    made = cliniko_sandbox.seed_appointment(patient=cliniko_patient, starts_at=now - 2 * HOUR)
    cliniko_sandbox.archive(made["id"])
    assert fetch_appointment(cliniko_creds, made["id"], now=now).status == "cancelled"
    single, listed = cliniko_sandbox.requests
    assert single.status == 404
    assert listed.filters() == [f"id:={made['id']}", "cancelled_at:*", "archived_at:*"]


def test_an_appointment_cliniko_no_longer_has_is_permanent(cliniko_sandbox, cliniko_creds):
    with pytest.raises(PermanentError, match="404"):
        fetch_appointment(cliniko_creds, "1176000000000000999")
    assert len(cliniko_sandbox.requests) == 2


def test_an_appointment_without_a_patient_is_permanent(cliniko_sandbox, cliniko_creds):
    made = cliniko_sandbox.seed_appointment(patient=None,
                                            starts_at=cliniko_sandbox.clock.now() - 2 * HOUR)
    with pytest.raises(PermanentError, match="has no patient"):
        PLATFORM.fetch_appointment(cliniko_creds, made["id"])


def test_an_id_that_is_not_cliniko_s_is_refused_before_any_request(cliniko_sandbox,
                                                                   cliniko_creds):
    for bad in ("../patients/1", "A-100", ""):
        with pytest.raises(PermanentError, match="not a Cliniko appointment id"):
            fetch_appointment(cliniko_creds, bad)
    assert cliniko_sandbox.requests == []


def test_refused_key_and_timeout(cliniko_sandbox, cliniko_creds, cliniko_patient):
    made = cliniko_sandbox.seed_appointment(patient=cliniko_patient,
                                            starts_at=cliniko_sandbox.clock.now())
    with pytest.raises(AuthError):
        fetch_appointment({**cliniko_creds, "api_key": "MS0xnotakey-au1"}, made["id"])
    cliniko_sandbox.delay_next("/individual_appointments/", 3)
    with pytest.raises(TransientError):
        fetch_appointment({**cliniko_creds, "timeout": 0.3}, made["id"])
