"""``rapport clinic poll KEY`` and a Cliniko clinic at the command line: refused plainly
without the contact email Cliniko requires, polled now on request, and listed with its
polls and calls."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from plugin.cli import main
from tests.sandboxes.cliniko import CONTACT_EMAIL, ClinikoSandbox


@pytest.fixture
def cliniko():
    with ClinikoSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def rapport(monkeypatch, tmp_path, redis_conn, redis_url, cliniko):
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("RAPPORT_REDIS_URL", redis_url)
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "cli-test-secret-key-0123456789")
    monkeypatch.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    monkeypatch.setenv("RAPPORT_CLINIKO_BASE_URL", cliniko.settings()["base_url"])
    monkeypatch.setenv("RAPPORT_CLINIKO_CONTACT_EMAIL", CONTACT_EMAIL)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))


def add(rapport, cliniko) -> str:
    added = rapport("clinic", "add", "--name", "Harbour", "--platform", "cliniko",
                    "--api-key", cliniko.api_key, "--json")
    assert added.exit_code == 0, added.output
    return json.loads(added.output)["key"]


def test_without_a_contact_email_a_cliniko_clinic_is_refused_plainly(rapport, cliniko,
                                                                     monkeypatch):
    monkeypatch.delenv("RAPPORT_CLINIKO_CONTACT_EMAIL")
    result = rapport("clinic", "add", "--name", "Harbour", "--platform", "cliniko",
                     "--api-key", cliniko.api_key)
    assert result.exit_code == 1
    assert "Error: Cliniko needs a contact email" in result.output
    assert "RAPPORT_CLINIKO_CONTACT_EMAIL" in result.output
    assert "Traceback" not in result.output
    assert cliniko.requests == []
    assert "No clinics yet" in rapport("clinic", "list").output


def test_clinic_poll_polls_now_and_says_what_it_found(rapport, cliniko):
    key = add(rapport, cliniko)
    sam = cliniko.seed_patient()
    # Booked a few minutes ago (the command polls on the real clock, and leaves the last
    # minute's changes to settle).
    booked_at = cliniko.clock.now() - timedelta(minutes=3)
    for days in (2, 9):
        cliniko.seed_appointment(patient=sam, updated_at=booked_at,
                                 starts_at=cliniko.clock.now() + timedelta(days=days))

    polled = rapport("clinic", "poll", key)

    assert polled.exit_code == 0, polled.output
    assert "Cliniko: 1 request(s), 2 appointment change(s) read (2 booked); 2 new —" \
        in polled.output
    assert "Nothing more waiting; next poll" in polled.output
    again = json.loads(rapport("clinic", "poll", key, "--json").output)
    # From where the first left off: nothing new.
    assert again["polled"] and again["read"] == 0 and again["more_waiting"] is False

    polls = len(cliniko.requests) - 1  # connecting is not counted: no clinic yet
    listed = rapport("clinic", "list").output
    assert "polled: last " in listed and f"rapport clinic poll {key}" in listed
    assert f"API calls this month: {polls}" in listed
    (row,) = json.loads(rapport("clinic", "list", "--json").output)
    assert row["api_calls_this_month"] == polls >= 1
    assert row["last_poll_problem"] is None
    assert row["next_poll_at"] > row["last_poll_at"]
    assert cliniko.refused == []


def test_clinic_poll_says_why_it_did_not_poll(rapport, cliniko):
    generic = json.loads(rapport("clinic", "add", "--name", "Other", "--platform", "generic",
                                 "--callback-url", "https://booking.example/hooks",
                                 "--json").output)["key"]
    result = rapport("clinic", "poll", generic)
    assert result.exit_code == 1
    assert "sends its events to Rapport: nothing to poll" in result.output

    key = add(rapport, cliniko)
    cliniko.fail_next("/individual_appointments", 503, times=2)
    failed = rapport("clinic", "poll", key)
    assert failed.exit_code == 1
    assert "Cliniko was asked, and nothing was read: Cliniko did not answer" in failed.output
    assert "503" in failed.output
    listed = rapport("clinic", "list").output
    assert "ATTENTION" in listed and "latest poll failed" in listed

    assert "no clinic with key 'nope'" in rapport("clinic", "poll", "nope").output
