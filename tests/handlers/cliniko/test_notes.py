"""Writing back to the local Cliniko: the patient's notes kept byte for byte around
Rapport's one block, idempotent, the next appointment's notes, and failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers.base import AuthError, TransientError, WriteBackTarget
from handlers.cliniko import BOOKING_BLOCK_LIMIT, PLATFORM, write_back, write_booking_note

THERAPIST = ("Allergic to almond oil.\r\nUse the unscented lotion.  \n"
             "Señora Ruiz prefers — quiet room ✓\n\n")
WHEN = datetime(2026, 11, 25, 15, tzinfo=UTC)


def target(patient):
    return WriteBackTarget(client_id=patient["id"], appointment_id="1176000000000004502",
                           therapist_id="1176000000000000003")


def test_the_patients_notes_are_kept_byte_for_byte_and_the_block_written_once(
        cliniko_sandbox, cliniko_creds, cliniko_note):
    patient = cliniko_sandbox.seed_patient(notes=THERAPIST)
    result = PLATFORM.write_back(cliniko_creds, target(patient), cliniko_note(),
                                 delivery_id="r-1", occurred_at=WHEN)
    notes = cliniko_sandbox.patient(patient["id"])["notes"]
    assert notes == THERAPIST + cliniko_note().text
    assert notes.count("[Rapport]") == notes.count("[/Rapport]") == 1
    assert result.target == "cliniko.patient"
    assert result.detail == {"patient_id": patient["id"], "note_updated": True}
    [write] = cliniko_sandbox.requests_to("PATCH", "/patients/")
    assert write.json == {"notes": notes}
    assert write.headers["content-type"] == "application/json"
    assert cliniko_sandbox.refused == []


def test_writing_the_same_note_again_changes_nothing(cliniko_sandbox, cliniko_creds,
                                                     cliniko_note):
    patient = cliniko_sandbox.seed_patient(notes=THERAPIST)
    write_back(cliniko_creds, target(patient), cliniko_note())
    before = cliniko_sandbox.patient(patient["id"])
    again = write_back(cliniko_creds, target(patient), cliniko_note())
    assert again.detail["note_updated"] is False
    assert cliniko_sandbox.patient(patient["id"]) == before
    assert len(cliniko_sandbox.requests_to("PATCH", "/patients/")) == 1
    assert len(cliniko_sandbox.requests_to("GET", "/patients/")) == 2


def test_a_new_note_replaces_the_block_and_what_the_therapist_added_since_stays(
        cliniko_sandbox, cliniko_creds, cliniko_note):
    patient = cliniko_sandbox.seed_patient(notes=THERAPIST)
    write_back(cliniko_creds, target(patient), cliniko_note(score=70))
    added = cliniko_sandbox.patient(patient["id"])["notes"] + "\r\nSaw her on the 3rd: calmer."
    cliniko_sandbox.edit_patient(patient["id"], notes=added)
    write_back(cliniko_creds, target(patient), cliniko_note(score=88))
    notes = cliniko_sandbox.patient(patient["id"])["notes"]
    assert notes == THERAPIST + cliniko_note(score=88).text + "\r\nSaw her on the 3rd: calmer."
    assert "70/100" not in notes and notes.count("[Rapport]") == 1


@pytest.mark.parametrize("notes", [None, ""])
def test_empty_notes_become_the_block_alone(cliniko_sandbox, cliniko_creds, cliniko_note, notes):
    patient = cliniko_sandbox.seed_patient(notes=notes)
    write_back(cliniko_creds, target(patient), cliniko_note())
    assert cliniko_sandbox.patient(patient["id"])["notes"] == cliniko_note().text


def test_a_refused_key_is_an_auth_error_and_nothing_is_written(cliniko_sandbox, cliniko_creds,
                                                               cliniko_note):
    patient = cliniko_sandbox.seed_patient(notes=THERAPIST)
    with pytest.raises(AuthError):
        write_back({**cliniko_creds, "api_key": "MS0xrevokedkey-au1"}, target(patient),
                   cliniko_note())
    assert cliniko_sandbox.patient(patient["id"])["notes"] == THERAPIST


def test_429_on_the_write_honours_retry_after_and_the_retry_writes_once(
        cliniko_sandbox, cliniko_creds, cliniko_note):
    patient = cliniko_sandbox.seed_patient(notes=THERAPIST)
    cliniko_sandbox.fail_next("/patients/", 429, method="PATCH", headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as throttled:
        write_back(cliniko_creds, target(patient), cliniko_note())
    assert throttled.value.retry_after == 7
    assert cliniko_sandbox.patient(patient["id"])["notes"] == THERAPIST
    write_back(cliniko_creds, target(patient), cliniko_note())
    assert cliniko_sandbox.patient(patient["id"])["notes"] == THERAPIST + cliniko_note().text


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_500_and_timeouts_are_transient(cliniko_sandbox, cliniko_creds, cliniko_note, method):
    patient = cliniko_sandbox.seed_patient(notes=THERAPIST)
    cliniko_sandbox.fail_next("/patients/", 500, method=method)
    with pytest.raises(TransientError):
        write_back(cliniko_creds, target(patient), cliniko_note())
    cliniko_sandbox.delay_next("/patients/", 3, method=method)
    with pytest.raises(TransientError, match="Timeout"):
        write_back({**cliniko_creds, "timeout": 0.3}, target(patient), cliniko_note())
    assert cliniko_sandbox.refused == []


def test_every_write_back_request_carries_the_user_agent(cliniko_sandbox, cliniko_creds,
                                                         cliniko_note):
    patient = cliniko_sandbox.seed_patient(notes=THERAPIST)
    write_back(cliniko_creds, target(patient), cliniko_note())
    assert [r.method for r in cliniko_sandbox.requests] == ["GET", "PATCH"]
    assert {r.headers["user-agent"] for r in cliniko_sandbox.requests} == {
        "Rapport (ops@rapport.example)"}


# --- the next appointment's notes -----------------------------------------------------


def upcoming(sandbox, patient, **fields):
    return sandbox.seed_appointment(patient=patient, starts_at=sandbox.clock.now() + timedelta(
        days=7), **fields)


def test_the_talking_points_go_on_the_next_appointment_beside_the_therapists_note(
        cliniko_sandbox, cliniko_creds, cliniko_patient, cliniko_note):
    visit = upcoming(cliniko_sandbox, cliniko_patient, notes="Bring the heat pack.")
    assert PLATFORM.write_booking_note(cliniko_creds, visit["id"], cliniko_note()) is True
    notes = cliniko_sandbox.appointment(visit["id"])["notes"]
    assert notes == "Bring the heat pack.\n\n" + cliniko_note().text
    [write] = cliniko_sandbox.requests_to("PATCH", "/individual_appointments/")
    assert write.json == {"notes": notes}

    # Again: already there, nothing written.
    assert write_booking_note(cliniko_creds, visit["id"], cliniko_note()) is True
    assert len(cliniko_sandbox.requests_to("PATCH", "/individual_appointments/")) == 1
    assert cliniko_sandbox.refused == []


def test_a_long_therapist_note_is_never_shortened_and_the_block_is_made_to_fit(
        cliniko_sandbox, cliniko_creds, cliniko_patient, cliniko_note):
    theirs = "Scar tissue, left knee. " * 200
    long_points = tuple(f"Talking point {n}: " + "word " * 60 for n in range(6))
    note = cliniko_note(points=long_points)
    assert len(note.text) > BOOKING_BLOCK_LIMIT
    visit = upcoming(cliniko_sandbox, cliniko_patient, notes=theirs)
    assert write_booking_note(cliniko_creds, visit["id"], note) is True
    notes = cliniko_sandbox.appointment(visit["id"])["notes"]
    assert notes.startswith(theirs)
    block = notes[len(theirs):].lstrip("\n")
    assert block.startswith("[Rapport]") and block.endswith("[/Rapport]")
    assert len(block) <= BOOKING_BLOCK_LIMIT and "Talking point 0" in block


def test_a_note_that_cannot_fit_leaves_the_appointment_alone(cliniko_sandbox, cliniko_creds,
                                                             cliniko_patient, cliniko_note):
    visit = upcoming(cliniko_sandbox, cliniko_patient, notes="Bring the heat pack.")
    note = cliniko_note()
    too_big = type(note)(text="[Rapport]\n" + "x" * 1200 + "\n[/Rapport]",
                         block_start="[Rapport]", block_end="[/Rapport]")
    assert write_booking_note(cliniko_creds, visit["id"], too_big) is False
    assert cliniko_sandbox.requests_to("PATCH", "/individual_appointments/") == []


@pytest.mark.parametrize("act", ["cancel", "archive", "mark_did_not_arrive", "over"])
def test_an_appointment_no_longer_ahead_gets_no_note(cliniko_sandbox, cliniko_creds,
                                                     cliniko_patient, cliniko_note, act):
    visit = upcoming(cliniko_sandbox, cliniko_patient, notes="Bring the heat pack.")
    if act == "over":
        cliniko_sandbox.clock.advance(days=8)
    else:
        getattr(cliniko_sandbox, act)(visit["id"])
    assert write_booking_note(cliniko_creds, visit["id"], cliniko_note(),
                              now=cliniko_sandbox.clock.now()) is False
    assert cliniko_sandbox.appointment(visit["id"])["notes"] == "Bring the heat pack."
    assert cliniko_sandbox.requests_to("PATCH", "/individual_appointments/") == []


def test_a_booking_note_write_refused_or_throttled(cliniko_sandbox, cliniko_creds,
                                                   cliniko_patient, cliniko_note):
    visit = upcoming(cliniko_sandbox, cliniko_patient)
    cliniko_sandbox.fail_next("/individual_appointments/", 429, method="PATCH",
                              headers={"Retry-After": "30"})
    with pytest.raises(TransientError) as throttled:
        write_booking_note(cliniko_creds, visit["id"], cliniko_note())
    assert throttled.value.retry_after == 30
    cliniko_sandbox.fail_next("/individual_appointments/", 401)
    with pytest.raises(AuthError):
        write_booking_note(cliniko_creds, visit["id"], cliniko_note())
    assert cliniko_sandbox.appointment(visit["id"])["notes"] is None
