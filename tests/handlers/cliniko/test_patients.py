"""Patients read as Rapport's clients, against the local Cliniko seeded with the
recorded patients."""

from __future__ import annotations

import pytest

from handlers.base import AuthError, Client, PermanentError
from handlers.cliniko import PLATFORM, fetch_client

FIELDS = ("first_name", "last_name", "email", "notes", "time_zone")


@pytest.mark.parametrize(("name", "first_name", "email"), [
    ("patient__documented", "Peter", "peter@example.com"),
    ("patient__no_email", "Alex", None),
])
def test_fetch_client_from_each_recorded_patient(cliniko_sandbox, cliniko_creds, cliniko_record,
                                                 name, first_name, email):
    recorded = cliniko_record(name)
    seeded = cliniko_sandbox.seed_patient(**{k: recorded[k] for k in FIELDS})
    found = PLATFORM.fetch_client(cliniko_creds, seeded["id"])
    assert found == Client(id=seeded["id"], email=email, first_name=first_name, locale=None,
                           unsubscribed=False)
    [asked] = cliniko_sandbox.requests
    assert (asked.method, asked.path) == ("GET", f"/patients/{seeded['id']}")


@pytest.mark.parametrize("email", ["", "   "])
def test_a_blank_email_is_no_email(cliniko_sandbox, cliniko_creds, email):
    seeded = cliniko_sandbox.seed_patient(email=email)
    assert fetch_client(cliniko_creds, seeded["id"]).email is None


def test_a_patient_cliniko_does_not_have_is_permanent(cliniko_sandbox, cliniko_creds):
    with pytest.raises(PermanentError, match="404"):
        fetch_client(cliniko_creds, "1176000000000000777")


def test_a_refused_key_is_an_auth_error(cliniko_sandbox, cliniko_creds, cliniko_patient):
    cliniko_sandbox.fail_next("/patients/", 401)
    with pytest.raises(AuthError):
        fetch_client(cliniko_creds, cliniko_patient["id"])


def test_an_id_that_is_not_cliniko_s_is_refused_before_any_request(cliniko_sandbox,
                                                                   cliniko_creds):
    with pytest.raises(PermanentError, match="not a Cliniko patient id"):
        fetch_client(cliniko_creds, "82/../../user")
    assert cliniko_sandbox.requests == []
