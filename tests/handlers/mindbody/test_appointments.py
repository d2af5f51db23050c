"""Reading appointments and clients from Mindbody, against the local Mindbody."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers import mindbody
from handlers.base import Client, PermanentError
from tests.handlers.mindbody.shared import refused

READ = "/public/v6/appointment/staffappointments"


def test_fetch_client_gives_email_and_first_name_but_no_locale(mb_sandbox, mb_creds, mb_client):
    assert mindbody.fetch_client(mb_creds, mb_client["Id"]) == Client(
        id=mb_client["Id"], email="sam@example.com", first_name="Sam")
    read = mb_sandbox.requests_to("GET", "/public/v6/client/clients")[0]
    assert read.query == {"request.clientIds": [mb_client["Id"]]}
    assert refused(mb_sandbox) == []


def test_an_unknown_client_is_permanent(mb_creds, mb_client):
    with pytest.raises(PermanentError, match="no client"):
        mindbody.fetch_client(mb_creds, "nobody")


@pytest.mark.parametrize("status, expected", [
    ("Booked", "booked"), ("Confirmed", "booked"), ("Arrived", "booked"),
    ("Completed", "completed"), ("NoShow", "no_show"), ("LateCancelled", "cancelled"),
])
def test_fetch_appointment_reports_mindbodys_own_status(status, expected, mb_sandbox, mb_creds,
                                                        mb_client):
    start = datetime(2026, 11, 25, 14, tzinfo=UTC)
    seeded = mb_sandbox.seed_appointment(-99, client_id=mb_client["Id"], start=start,
                                         status=status)
    now = start + timedelta(hours=3)
    found = mindbody.fetch_appointment(mb_creds, str(seeded["Id"]), now=now)
    assert (found.status, found.start, found.end) == (expected, start, start + timedelta(hours=1))
    assert (found.client.id, found.therapist.id, found.therapist.name) == (
        mb_client["Id"], "7", "Dana Ruiz")


def test_the_read_asks_for_the_appointment_in_a_date_range(mb_sandbox, mb_creds, mb_next_visit):
    mindbody.fetch_appointment(mb_creds, str(mb_next_visit["Id"]))
    query = mb_sandbox.requests_to("GET", READ)[0].query
    assert query["request.appointmentIds"] == [str(mb_next_visit["Id"])]
    assert query["request.startDate"][0] < query["request.endDate"][0]
    assert refused(mb_sandbox) == []


def test_an_appointment_mindbody_does_not_have_is_permanent(mb_creds, mb_client):
    with pytest.raises(PermanentError, match="no appointment 424242"):
        mindbody.fetch_appointment(mb_creds, "424242")
