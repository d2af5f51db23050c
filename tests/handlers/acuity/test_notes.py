"""handlers/acuity/notes.py against the stand-in over real HTTP: the clinic's own text kept
byte for byte, Rapport's block written once, idempotent, the next appointment's notes, the
fallback to the visit's notes, Acuity's failures as Rapport's errors — and no request the
specification refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers import acuity
from handlers.base import AuthError, PermanentError, TransientError, WriteBackTarget

THERAPIST = "Prefers firm pressure.\r\nAvoid the left knee.\n"
CLIENT_NOTES = "Allergic to almond oil.\n\nPays by card.  "


def _target(visit) -> WriteBackTarget:
    return WriteBackTarget(client_id=acuity.client_id_for(visit["email"]),
                           appointment_id=str(visit["id"]))


def _write(creds, visit, note):
    return acuity.write_back(creds, _target(visit), note, delivery_id="r-1",
                             occurred_at=datetime.now(UTC))


def _blocks(text: str) -> int:
    return text.count("[Rapport]")


@pytest.fixture
def sams_visit(acuity_stand_in, acuity_now):
    """Sam's visit that ended an hour ago; Sam is in the client list with notes of the
    clinic's own."""
    acuity_stand_in.seed_client(email="sam@example.com", phone="555-0100", notes=CLIENT_NOTES)
    return acuity_stand_in.seed_appointment(start=acuity_now - timedelta(hours=2),
                                            phone="555-0100", notes=THERAPIST,
                                            add_client=False)


# --- the client's notes --------------------------------------------------------------------


def test_the_block_goes_after_the_clients_own_notes(acuity_stand_in, acuity_creds, sams_visit,
                                                   acuity_note):
    note = acuity_note()
    result = _write(acuity_creds, sams_visit, note)
    assert result.target == "acuity.client"
    saved = acuity_stand_in.client("Sam", "Rivera")["notes"]
    assert saved.startswith(CLIENT_NOTES)  # byte for byte, trailing spaces too
    assert saved == CLIENT_NOTES + "\n\n" + note.text
    assert _blocks(saved) == 1
    # The visit's own notes are untouched.
    assert acuity_stand_in.appointment(sams_visit["id"])["notes"] == THERAPIST
    [put] = acuity_stand_in.requests_to("PUT", "/api/v1/clients")
    assert put.args == {"firstName": "Sam", "lastName": "Rivera", "phone": "555-0100"}
    assert put.json == {"notes": saved}
    assert acuity_stand_in.rejected == []


def test_writing_again_changes_nothing(acuity_stand_in, acuity_creds, sams_visit, acuity_note):
    note = acuity_note()
    _write(acuity_creds, sams_visit, note)
    again = _write(acuity_creds, sams_visit, note)
    assert again.detail["notes_updated"] is False
    assert len(acuity_stand_in.requests_to("PUT", "/api/v1/clients")) == 1
    assert _blocks(acuity_stand_in.client("Sam", "Rivera")["notes"]) == 1


def test_a_new_check_in_replaces_the_block_in_place(acuity_stand_in, acuity_creds, sams_visit,
                                                   acuity_note):
    _write(acuity_creds, sams_visit, acuity_note())
    after = acuity_stand_in.client("Sam", "Rivera")["notes"] + "\nCall before 6pm."
    acuity_stand_in.clients[-1]["notes"] = after  # the therapist adds a line below
    newer = acuity_note(comment="Loved the hot stones.")
    _write(acuity_creds, sams_visit, newer)
    saved = acuity_stand_in.client("Sam", "Rivera")["notes"]
    assert saved == CLIENT_NOTES + "\n\n" + newer.text + "\nCall before 6pm."
    assert _blocks(saved) == 1


def test_one_call_each_to_read_the_visit_find_the_client_and_write(acuity_stand_in,
                                                                   acuity_creds, sams_visit,
                                                                   acuity_note):
    _write(acuity_creds, sams_visit, acuity_note())
    assert [(r.method, r.path) for r in acuity_stand_in.requests] == [
        ("GET", f"/api/v1/appointments/{sams_visit['id']}"),
        ("GET", "/api/v1/clients"),
        ("PUT", "/api/v1/clients"),
    ]
    assert acuity_stand_in.requests[1].args == {"search": "Sam Rivera"}


def test_namesakes_told_apart_by_phone(acuity_stand_in, acuity_creds, sams_visit, acuity_note):
    acuity_stand_in.seed_client(email="other.sam@example.com", phone="555-0199")
    result = _write(acuity_creds, sams_visit, acuity_note())
    assert result.target == "acuity.client"
    [put] = acuity_stand_in.requests_to("PUT", "/api/v1/clients")
    assert put.args["phone"] == "555-0100"
    others = [c for c in acuity_stand_in.clients if c["email"] == "other.sam@example.com"]
    assert others[0]["notes"] == ""


@pytest.mark.parametrize("other", [
    {"email": "other.sam@example.com", "phone": "555-0100"},  # same name and phone
    {"email": "other.sam@example.com", "phone": ""},
])
def test_namesakes_acuity_cannot_tell_apart_leave_the_client_alone(other, acuity_stand_in,
                                                                   acuity_creds, acuity_note,
                                                                   acuity_now):
    acuity_stand_in.seed_client(email="sam@example.com", phone="", notes=CLIENT_NOTES)
    acuity_stand_in.seed_client(**other)
    visit = acuity_stand_in.seed_appointment(start=acuity_now - timedelta(hours=2),
                                             notes=THERAPIST, add_client=False)
    note = acuity_note()
    result = _write(acuity_creds, visit, note)
    assert result.target == "acuity.appointment"
    assert "several clients share the name" in result.detail["why"]
    assert acuity_stand_in.requests_to("PUT", "/api/v1/clients") == []
    saved = acuity_stand_in.appointment(visit["id"])["notes"]
    assert saved == THERAPIST + "\n" + note.text  # CRLF and the final newline kept
    [put] = acuity_stand_in.requests_to("PUT", f"/api/v1/appointments/{visit['id']}")
    assert put.args == {"admin": "true"} and put.json == {"notes": saved}


def test_a_namesake_with_another_address_is_not_the_client(acuity_stand_in, acuity_creds,
                                                          acuity_note, acuity_now):
    acuity_stand_in.seed_client(email="someone.else@example.com", notes=CLIENT_NOTES)
    visit = acuity_stand_in.seed_appointment(start=acuity_now - timedelta(hours=2),
                                             add_client=False)
    result = _write(acuity_creds, visit, acuity_note())
    assert result.target == "acuity.appointment"
    assert acuity_stand_in.client("Sam", "Rivera")["notes"] == CLIENT_NOTES


def test_a_visit_that_no_longer_has_the_clients_address_is_not_written(acuity_stand_in,
                                                                      acuity_creds, sams_visit,
                                                                      acuity_note):
    target = _target(sams_visit)
    acuity_stand_in.appointments[sams_visit["id"]]["email"] = "new.owner@example.com"
    with pytest.raises(PermanentError, match="no longer has the e-mail address"):
        acuity.write_back(acuity_creds, target, acuity_note(), delivery_id="r-1",
                          occurred_at=datetime.now(UTC))
    assert [r.method for r in acuity_stand_in.requests] == ["GET"]


def test_the_visits_notes_are_written_once_too(acuity_stand_in, acuity_creds, acuity_note,
                                               acuity_now):
    visit = acuity_stand_in.seed_appointment(start=acuity_now - timedelta(hours=2),
                                             notes=THERAPIST, add_client=False)
    note = acuity_note()
    for _ in range(3):
        result = _write(acuity_creds, visit, note)
    assert result.target == "acuity.appointment" and result.detail["notes_updated"] is False
    assert len(acuity_stand_in.requests_to("PUT", f"/api/v1/appointments/{visit['id']}")) == 1
    assert _blocks(acuity_stand_in.appointment(visit["id"])["notes"]) == 1


# --- the next appointment ------------------------------------------------------------------


@pytest.fixture
def acuity_next_visit(acuity_stand_in, acuity_now):
    return acuity_stand_in.seed_appointment(start=acuity_now + timedelta(days=7),
                                            notes=THERAPIST)


def test_talking_points_go_on_the_next_appointment(acuity_stand_in, acuity_creds, acuity_next_visit,
                                                   acuity_note):
    note = acuity_note()
    assert acuity.write_booking_note(acuity_creds, str(acuity_next_visit["id"]), note) is True
    saved = acuity_stand_in.appointment(acuity_next_visit["id"])["notes"]
    assert saved == THERAPIST + "\n" + note.text
    assert acuity.write_booking_note(acuity_creds, str(acuity_next_visit["id"]), note) is True
    assert len(acuity_stand_in.requests_to("PUT",
                                           f"/api/v1/appointments/{acuity_next_visit['id']}")) == 1
    assert acuity_stand_in.rejected == []


def test_a_long_note_of_the_therapists_shortens_rapports_block_not_theirs(acuity_stand_in,
                                                                         acuity_creds,
                                                                         acuity_next_visit,
                                                                         acuity_note):
    note = acuity_note(comment="The room was a little cold today, otherwise lovely.")
    own = ("Notes from intake. " * 200)[: acuity.NOTES_LIMIT - len(note.text) + 200]
    acuity_stand_in.edit_notes(acuity_next_visit["id"], own)
    assert acuity.write_booking_note(acuity_creds, str(acuity_next_visit["id"]), note) is True
    saved = acuity_stand_in.appointment(acuity_next_visit["id"])["notes"]
    assert saved.startswith(own) and len(saved) <= acuity.NOTES_LIMIT
    block = saved[len(own):].lstrip("\n")
    assert block.startswith("[Rapport]") and block.endswith("[/Rapport]")
    assert len(block) < len(note.text)


def test_no_room_beside_the_therapists_notes_leaves_the_appointment_alone(acuity_stand_in,
                                                                         acuity_creds,
                                                                         acuity_next_visit,
                                                                         acuity_note):
    own = "x" * (acuity.NOTES_LIMIT - 10)
    acuity_stand_in.edit_notes(acuity_next_visit["id"], own)
    assert acuity.write_booking_note(acuity_creds, str(acuity_next_visit["id"]),
                                     acuity_note()) is False
    assert acuity_stand_in.appointment(acuity_next_visit["id"])["notes"] == own
    assert acuity_stand_in.requests_to("PUT",
                                       f"/api/v1/appointments/{acuity_next_visit['id']}") == []


def test_a_cancelled_or_past_appointment_gets_no_talking_points(acuity_stand_in, acuity_creds,
                                                               acuity_note, acuity_now):
    cancelled = acuity_stand_in.seed_appointment(start=acuity_now + timedelta(days=3))
    acuity_stand_in.cancel(cancelled["id"])
    past = acuity_stand_in.seed_appointment(start=acuity_now - timedelta(days=3))
    for appointment in (cancelled, past):
        assert acuity.write_booking_note(acuity_creds, str(appointment["id"]),
                                         acuity_note()) is False
    assert [r.method for r in acuity_stand_in.requests] == ["GET", "GET"]


# --- Acuity's failures ----------------------------------------------------------------------


def test_a_refused_api_key_is_an_auth_error(acuity_stand_in, acuity_creds, sams_visit,
                                            acuity_note):
    acuity_stand_in.rotate_api_key()  # the admin regenerated it in Acuity
    with pytest.raises(AuthError, match="401"):
        _write(acuity_creds, sams_visit, acuity_note())


def test_throttling_honours_retry_after_and_the_retry_writes_once(acuity_stand_in,
                                                                  acuity_creds, sams_visit,
                                                                  acuity_note):
    acuity_stand_in.fail_next("/api/v1/clients", 429, headers={"Retry-After": "7"},
                              method="PUT")
    with pytest.raises(TransientError) as throttled:
        _write(acuity_creds, sams_visit, acuity_note())
    assert throttled.value.retry_after == 7.0
    _write(acuity_creds, sams_visit, acuity_note())
    assert _blocks(acuity_stand_in.client("Sam", "Rivera")["notes"]) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_transient(status, acuity_stand_in, acuity_creds, sams_visit,
                                     acuity_note):
    acuity_stand_in.fail_next("/api/v1/appointments/", status)
    with pytest.raises(TransientError, match=str(status)) as failed:
        _write(acuity_creds, sams_visit, acuity_note())
    assert failed.value.retry_after is None


def test_a_slow_answer_is_a_timeout_and_transient(acuity_stand_in, sams_visit, acuity_note):
    acuity_stand_in.delay_next("/api/v1/appointments/", 1.0)
    creds = acuity_stand_in.credentials(timeout=0.2)
    with pytest.raises(TransientError, match="Timeout"):
        _write(creds, sams_visit, acuity_note())


def test_acuity_out_of_reach_is_transient(acuity_creds, sams_visit, acuity_note):
    unreachable = {**acuity_creds, "base_url": "http://127.0.0.1:9"}
    with pytest.raises(TransientError, match="ConnectionError"):
        _write(unreachable, sams_visit, acuity_note())


def test_a_request_acuity_refuses_is_a_permanent_error(acuity_stand_in, acuity_creds):
    visit = acuity_stand_in.seed_appointment(start="2026-11-25T15:00:00Z")
    acuity_stand_in.fail_next("/api/v1/appointments/", 403)
    with pytest.raises(PermanentError, match="403"):
        acuity.fetch_appointment(acuity_creds, str(visit["id"]))
