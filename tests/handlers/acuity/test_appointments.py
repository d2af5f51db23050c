"""handlers/acuity/appointments.py: Acuity's appointments as Rapport's — one test per
recorded appointment, completion read against the stand-in, the client id, fetch_client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers import acuity
from handlers.acuity import appointments
from handlers.base import BOOKED, CANCELLED, COMPLETED, NO_SHOW, PermanentError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "acuity"
BEFORE = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # before the 2026 visits started
AFTER = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)  # after every visit ended
SAM = acuity.client_id_for("sam.rivera@example.com")

# Each recorded appointment: (status before it, status after it, start in UTC, client id).
EXPECTED = {
    # The reference's example (2013): long over, never cancelled.
    "appointment__documented": (COMPLETED, COMPLETED, "2013-06-17T17:15:00+00:00",
                                acuity.client_id_for("bob.mctest@example.com")),
    "appointment__scheduled": (BOOKED, COMPLETED, "2026-11-25T15:00:00+00:00", SAM),
    "appointment__rescheduled": (BOOKED, COMPLETED, "2026-11-27T19:30:00+00:00", SAM),
    "appointment__canceled": (CANCELLED, CANCELLED, "2026-11-25T15:00:00+00:00", SAM),
    "appointment__no_show": (NO_SHOW, NO_SHOW, "2026-11-25T15:00:00+00:00", SAM),
    "appointment__changed": (BOOKED, COMPLETED, "2026-11-25T15:00:00+00:00",
                             acuity.client_id_for("sam.rivera@newmail.example")),
    "appointment__canceled_with_nulls": (CANCELLED, CANCELLED, "2013-06-17T17:15:00+00:00",
                                         acuity.client_id_for("bob.mctest@example.com")),
    "appointment__no_email": "has no e-mail address",
}


def test_every_recorded_appointment_has_an_expectation():
    assert sorted(EXPECTED) == sorted(p.stem for p in FIXTURES.glob("appointment__*.json"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_read(name, acuity_json):
    loaded = appointments.load(acuity_json(name))
    expected = EXPECTED[name]
    if isinstance(expected, str):
        with pytest.raises(PermanentError, match=expected):
            appointments.event_of(loaded, now=AFTER)
        return
    before, after, start, client_id = expected
    assert appointments.event_of(loaded, now=BEFORE).status == before
    event = appointments.event_of(loaded, now=AFTER)
    assert event.status == after
    assert event.start.isoformat() == start
    assert event.end - event.start == timedelta(minutes=int(loaded["duration"]))
    assert event.client.id == client_id
    assert event.client.email == loaded["email"]
    assert event.therapist.id == "27238" and event.therapist.name == loaded["calendar"]
    assert event.service == loaded["type"]


# Acuity's nulls are outside the specification the stand-in answers in: read above only.
SERVED = [name for name in sorted(EXPECTED) if name != "appointment__canceled_with_nulls"]


@pytest.mark.parametrize("name", SERVED)
def test_fetch_reads_each_recorded_appointment_over_http(name, acuity_json, acuity_stand_in,
                                                         acuity_creds):
    """The recorded answers are in Acuity's documented shape (the stand-in checks its answers
    against the specification) and read the same over HTTP."""
    acuity_stand_in.put_appointment(acuity_json(name))
    appointment_id = str(acuity_json(name)["id"])
    expected = EXPECTED[name]
    if isinstance(expected, str):
        with pytest.raises(PermanentError, match=expected):
            acuity.fetch_appointment(acuity_creds, appointment_id)
        return
    event = appointments.fetch_appointment(acuity_creds, appointment_id, now=AFTER)
    assert (event.status, event.client.id) == (expected[1], expected[3])
    assert len(acuity_stand_in.requests_to("GET", f"/api/v1/appointments/{appointment_id}")) == 1


# --- completion, read from the stand-in ---------------------------------------------------


def test_an_appointment_that_ended_standing_is_completed(acuity_stand_in, acuity_creds):
    ended = acuity_stand_in.seed_appointment(start=datetime.now(UTC) - timedelta(minutes=75))
    event = acuity.fetch_appointment(acuity_creds, str(ended["id"]))
    assert event.status == COMPLETED
    assert event.end <= datetime.now(UTC)


def test_an_appointment_not_yet_ended_is_booked(acuity_stand_in, acuity_creds):
    # Started 30 minutes ago, 60 minutes long: still under way.
    running = acuity_stand_in.seed_appointment(start=datetime.now(UTC) - timedelta(minutes=30))
    assert acuity.fetch_appointment(acuity_creds, str(running["id"])).status == BOOKED


def test_a_cancelled_appointment_is_cancelled_even_after_its_end(acuity_stand_in, acuity_creds):
    ended = acuity_stand_in.seed_appointment(start=datetime.now(UTC) - timedelta(hours=3))
    acuity_stand_in.cancel(ended["id"])
    assert acuity.fetch_appointment(acuity_creds, str(ended["id"])).status == CANCELLED


def test_a_no_show_is_a_no_show(acuity_stand_in, acuity_creds):
    ended = acuity_stand_in.seed_appointment(start=datetime.now(UTC) - timedelta(hours=3))
    acuity_stand_in.cancel(ended["id"], no_show=True)
    assert acuity.fetch_appointment(acuity_creds, str(ended["id"])).status == NO_SHOW
    # Acuity lets the flag be changed later, never the cancellation.
    acuity_stand_in.mark_no_show(ended["id"], False)
    assert acuity.fetch_appointment(acuity_creds, str(ended["id"])).status == CANCELLED


def test_a_visit_rescheduled_to_later_is_booked_again(acuity_stand_in, acuity_creds):
    visit = acuity_stand_in.seed_appointment(start=datetime.now(UTC) - timedelta(hours=2))
    later = datetime.now(UTC) + timedelta(days=2)
    acuity_stand_in.reschedule(visit["id"], later)
    event = acuity.fetch_appointment(acuity_creds, str(visit["id"]))
    assert event.status == BOOKED
    assert event.start == later.replace(microsecond=0)


def test_an_unknown_appointment_is_a_permanent_error(acuity_creds):
    with pytest.raises(PermanentError, match="404"):
        acuity.fetch_appointment(acuity_creds, "999999")


@pytest.mark.parametrize("bad", ["", "abc", "1/../me", "0", "12 34"])
def test_an_id_that_is_not_one_never_reaches_acuity(bad, acuity_stand_in, acuity_creds):
    with pytest.raises(PermanentError, match="not an Acuity appointment id"):
        acuity.fetch_appointment(acuity_creds, bad)
    assert acuity_stand_in.requests == []


@pytest.mark.parametrize("value", ["2026-11-25T10:00:00", "November 25, 2026", "soon"])
def test_a_time_without_its_offset_is_not_guessed(value, acuity_json):
    data = {**acuity_json("appointment__scheduled"), "datetime": value}
    with pytest.raises(PermanentError, match="datetime"):
        appointments.load(data, "1109810062")


# --- the client id ------------------------------------------------------------------------


def test_the_client_id_is_the_address_whatever_its_case_and_never_shows_it():
    assert acuity.client_id_for(" Sam.Rivera@Example.com ") == SAM
    assert SAM.startswith("acuity-") and "sam" not in SAM and "@" not in SAM
    assert acuity.client_id_for("sam@other.example") != SAM
    assert acuity.client_id_for("") is None and acuity.client_id_for(None) is None


def test_a_clients_appointments_share_one_client_id(acuity_stand_in, acuity_creds):
    first = acuity_stand_in.seed_appointment(start="2026-11-25T15:00:00Z",
                                             email="Sam.Rivera@Example.com")
    second = acuity_stand_in.seed_appointment(start="2026-12-02T15:00:00Z",
                                              email="sam.rivera@example.com")
    ids = {acuity.fetch_appointment(acuity_creds, str(a["id"])).client.id
           for a in (first, second)}
    assert ids == {SAM}


# --- fetch_client ---------------------------------------------------------------------------


def test_fetch_client_finds_the_address_behind_the_id(acuity_stand_in, acuity_creds):
    acuity_stand_in.seed_client(first_name="Ana", last_name="Lima", email="ana@example.com")
    acuity_stand_in.seed_client(first_name="Sam", last_name="Rivera",
                                email="Sam.Rivera@Example.com")
    client = acuity.fetch_client(acuity_creds, SAM)
    assert (client.id, client.email, client.first_name) == (SAM, "Sam.Rivera@Example.com",
                                                            "Sam")
    assert len(acuity_stand_in.requests_to("GET", "/api/v1/clients")) == 1


def test_fetch_client_says_when_no_client_has_that_address(acuity_stand_in, acuity_creds):
    acuity_stand_in.seed_client(first_name="Ana", last_name="Lima", email="ana@example.com")
    with pytest.raises(PermanentError, match="no client"):
        acuity.fetch_client(acuity_creds, SAM)
