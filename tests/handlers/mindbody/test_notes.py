"""Writing Rapport's block into Mindbody's client notes and the next appointment's
notes, against the local Mindbody over real HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from handlers import mindbody
from handlers.base import AuthError, TransientError, WriteBackTarget
from tests.handlers.mindbody.shared import END, START, note, refused

UPDATE_CLIENT = "/public/v6/client/updateclient"
UPDATE_APPOINTMENT = "/public/v6/appointment/updateappointment"
WHEN = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


@pytest.fixture
def mb_target(mb_client):
    return WriteBackTarget(client_id=mb_client["Id"], appointment_id="30512")


def write(creds, target, written=None):
    return mindbody.write_back(creds, target, written or note(), delivery_id="Cm4rL9sBy1Xf6u",
                               occurred_at=WHEN)


# --- the client's notes --------------------------------------------------------------


def test_the_block_goes_after_the_therapists_notes(mb_sandbox, mb_creds, mb_target):
    result = write(mb_creds, mb_target)
    assert mb_sandbox.client(-99, mb_target.client_id)["Notes"] == (
        "Prefers firm pressure.\n\n" + note().text)
    assert (result.target, result.detail["notes_updated"]) == ("mindbody.client_notes", True)
    sent = mb_sandbox.requests_to("POST", UPDATE_CLIENT)[0].json
    assert sent == {"Client": {"Id": mb_target.client_id, "Notes": sent["Client"]["Notes"]},
                    "CrossRegionalUpdate": False, "Test": False}
    assert refused(mb_sandbox) == []


def test_the_block_is_replaced_and_the_therapists_text_kept_byte_for_byte(
        mb_sandbox, mb_creds, mb_target):
    before = "Prefers firm pressure.\r\n  Knee surgery 2024 \u2014 avoid deep work.\r\n\r\n"
    after = "\r\n\tAllergic to arnica.  \r\n"
    theirs = f"{before}{START}\r\nold\r\n{END}{after}"
    mb_sandbox.edit_client(-99, mb_target.client_id, Notes=theirs)
    write(mb_creds, mb_target)
    assert mb_sandbox.client(-99, mb_target.client_id)["Notes"] == before + note().text + after


def test_a_second_identical_write_changes_nothing(mb_sandbox, mb_creds, mb_target):
    write(mb_creds, mb_target)
    saved = mb_sandbox.client(-99, mb_target.client_id)["Notes"]
    again = write(mb_creds, mb_target)
    assert again.detail["notes_updated"] is False
    assert mb_sandbox.client(-99, mb_target.client_id)["Notes"] == saved
    assert saved.count(START) == 1
    assert len(mb_sandbox.requests_to("POST", UPDATE_CLIENT)) == 1


def test_a_newer_note_replaces_the_block_once(mb_sandbox, mb_creds, mb_target):
    write(mb_creds, mb_target)
    write(mb_creds, mb_target, note("Alliance 90/100"))
    saved = mb_sandbox.client(-99, mb_target.client_id)["Notes"]
    assert saved == "Prefers firm pressure.\n\n" + note("Alliance 90/100").text


def test_a_completed_visit_costs_two_calls_once_the_token_is_kept(mb_sandbox, mb_creds,
                                                                   mb_target):
    write(mb_creds, mb_target)
    calls = [(r.method, r.path) for r in mb_sandbox.requests if "usertoken" not in r.path]
    assert calls == [("GET", "/public/v6/client/clients"), ("POST", UPDATE_CLIENT)]


def test_a_revoked_site_is_an_auth_error(mb_sandbox, mb_creds, mb_target):
    write(mb_creds, mb_target)
    mb_sandbox.fail_next("/public/v6/", 401, times=3)
    with pytest.raises(AuthError):
        write(mb_creds, mb_target, note("Alliance 90/100"))


def test_throttling_honours_retry_after(mb_sandbox, mb_creds, mb_target):
    mindbody.fetch_client(mb_creds, mb_target.client_id)
    mb_sandbox.fail_next(UPDATE_CLIENT, 429, headers={"Retry-After": "30"})
    with pytest.raises(TransientError) as raised:
        write(mb_creds, mb_target)
    assert raised.value.retry_after == 30
    write(mb_creds, mb_target)  # the retry writes it, once
    assert mb_sandbox.client(-99, mb_target.client_id)["Notes"].count(START) == 1


def test_a_server_error_or_a_timeout_is_transient(mb_sandbox, mb_target):
    creds = mb_sandbox.credentials(timeout=0.3)
    mindbody.fetch_client(creds, mb_target.client_id)
    mb_sandbox.fail_next(UPDATE_CLIENT, 500)
    with pytest.raises(TransientError):
        write(creds, mb_target)
    mb_sandbox.delay_next(UPDATE_CLIENT, 1.0)
    with pytest.raises(TransientError):
        write(creds, mb_target)


# --- the next appointment's notes ----------------------------------------------------


def test_the_next_appointment_gets_the_block_beside_the_therapists_notes(
        mb_sandbox, mb_creds, mb_next_visit):
    mb_sandbox.edit_appointment(-99, mb_next_visit["Id"], Notes="Bring the heat pack.")
    assert mindbody.write_booking_note(mb_creds, str(mb_next_visit["Id"]), note()) is True
    assert mb_sandbox.appointment(-99, mb_next_visit["Id"])["Notes"] == (
        "Bring the heat pack.\n\n" + note().text)
    sent = mb_sandbox.requests_to("POST", UPDATE_APPOINTMENT)[0].json
    assert sent["AppointmentId"] == mb_next_visit["Id"] and sent["SendEmail"] is False
    assert refused(mb_sandbox) == []


def test_the_booking_note_is_written_once(mb_sandbox, mb_creds, mb_next_visit):
    for _ in range(2):
        assert mindbody.write_booking_note(mb_creds, str(mb_next_visit["Id"]), note()) is True
    assert mb_sandbox.appointment(-99, mb_next_visit["Id"])["Notes"] == note().text
    assert len(mb_sandbox.requests_to("POST", UPDATE_APPOINTMENT)) == 1


@pytest.mark.parametrize("status", ["Cancelled", "LateCancelled", "Completed", "NoShow"])
def test_an_appointment_no_longer_ahead_is_left_alone(status, mb_sandbox, mb_creds,
                                                      mb_next_visit):
    mb_sandbox.edit_appointment(-99, mb_next_visit["Id"], Status=status)
    assert mindbody.write_booking_note(mb_creds, str(mb_next_visit["Id"]), note()) is False
    assert mb_sandbox.requests_to("POST", UPDATE_APPOINTMENT) == []


def test_an_appointment_mindbody_no_longer_has_is_left_alone(mb_sandbox, mb_creds, mb_client):
    assert mindbody.write_booking_note(mb_creds, "424242", note()) is False


def test_the_therapists_long_notes_are_never_shortened(mb_sandbox, mb_creds, mb_next_visit):
    theirs = "x" * (mindbody.APPOINTMENT_NOTES_LIMIT - 20)
    mb_sandbox.edit_appointment(-99, mb_next_visit["Id"], Notes=theirs)
    assert mindbody.write_booking_note(mb_creds, str(mb_next_visit["Id"]), note()) is False
    assert mb_sandbox.appointment(-99, mb_next_visit["Id"])["Notes"] == theirs


def test_a_block_too_long_for_the_room_left_is_rendered_shorter(mb_sandbox, mb_creds,
                                                                 mb_next_visit):
    theirs = "y" * (mindbody.APPOINTMENT_NOTES_LIMIT - 60)
    mb_sandbox.edit_appointment(-99, mb_next_visit["Id"], Notes=theirs)
    short = f"{START}\nAlliance 82\n{END}"
    long = replace(note("Alliance 82/100 ▂▅▇\n" + "- talking point\n" * 10),
                   render=lambda limit: short if limit >= len(short) else _too_small())
    assert mindbody.write_booking_note(mb_creds, str(mb_next_visit["Id"]), long) is True
    assert mb_sandbox.appointment(-99, mb_next_visit["Id"])["Notes"] == theirs + "\n\n" + short


def _too_small() -> str:
    raise ValueError("no room")
