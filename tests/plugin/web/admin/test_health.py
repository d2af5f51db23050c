"""The health page: counts without tests, a write-back that failed once needing
attention at once with the platform's reason and a retry button, the admin's own test
check-ins, and "needs reconnecting" with its fix."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from plugin.clinics import records
from plugin.store import database
from plugin.store.models import WriteBack
from tests.support import clinic_data, console

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def signed_in(app, web, generic_clinic):
    return console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])


def health(web, generic_clinic) -> str:
    return web.get(f"/admin/clinics/{generic_clinic['key']}/health").get_data(as_text=True)


def test_a_write_back_that_failed_once_needs_attention_at_once(app, signed_in, generic_clinic):
    with app.app_context(), database.session() as db:
        clinic_id = records.by_key(db, generic_clinic["key"]).id
        response = clinic_data.answered_visit(db, clinic_id, "C-7", NOW - timedelta(days=1), 8)
        clinic_data.write_back(db, response, status="pending", attempts=1,
                               last_error="https://booking.example answered 503")
    page = health(signed_in, generic_clinic)
    assert "Failed once; Rapport is retrying" in page
    assert "https://booking.example answered 503" in page
    assert "Retry now" in page
    assert "1 retrying after a failure" in page


def test_retrying_sends_it_again_and_the_page_shows_it_delivered(app, signed_in, generic_clinic,
                                                                 callback_receiver, drain):
    with app.app_context(), database.session() as db:
        clinic_id = records.by_key(db, generic_clinic["key"]).id
        response = clinic_data.answered_visit(db, clinic_id, "C-7", NOW - timedelta(days=1), 8)
        failed = clinic_data.write_back(db, response, attempts=8,
                                        last_error="the receiver answered 410: gone")
        failed_id = failed.id
    page = health(signed_in, generic_clinic)
    assert "Failed: Rapport stopped trying" in page and "answered 410: gone" in page
    answer = console.post_form(signed_in, f"/admin/clinics/{generic_clinic['key']}/health",
                               f"/admin/clinics/{generic_clinic['key']}/write-backs/{failed_id}/retry")
    assert answer.status_code == 303
    assert "Queued again" in signed_in.get(answer.headers["Location"]).get_data(as_text=True)
    drain()
    assert len(callback_receiver.received) == 1
    with app.app_context(), database.session() as db:
        assert db.get(WriteBack, failed_id).status == "delivered"
    page = health(signed_in, generic_clinic)
    assert "None: every note was delivered" in page


def test_a_test_check_in_shows_in_its_own_list_and_nowhere_else(app, signed_in, generic_clinic,
                                                                 mailbox):
    answer = console.post_form(signed_in, f"/admin/clinics/{generic_clinic['key']}/health",
                               f"/admin/clinics/{generic_clinic['key']}/test")
    assert answer.status_code == 303
    (message,) = mailbox.messages
    assert message["To"] == "dana@harbour.example"
    page = signed_in.get(answer.headers["Location"]).get_data(as_text=True)
    assert "A test check-in went to dana@harbour.example" in page
    assert "Your latest tests" in page and ">sent" in page
    assert "<th scope=\"row\">Check-ins sent</th><td>0</td><td>0</td>" in page


def test_a_clinic_needing_reconnecting_says_how_to_fix_it(app, signed_in, generic_clinic):
    with app.app_context(), database.session() as db:
        records.mark_needs_reconnecting(records.by_key(db, generic_clinic["key"]),
                                        "the platform refused the credentials")
    page = health(signed_in, generic_clinic)
    assert "Needs reconnecting" in page
    assert "the platform refused the credentials" in page
    assert f"rapport clinic rotate-secret {generic_clinic['key']}" in page


def test_counts_are_the_clients_only(app, signed_in, generic_clinic):
    with app.app_context(), database.session() as db:
        clinic_id = records.by_key(db, generic_clinic["key"]).id
        clinic_data.answered_visit(db, clinic_id, "C-1", NOW - timedelta(days=2), 8)
        expired = clinic_data.visit(db, clinic_id, "C-2", NOW - timedelta(days=20))
        clinic_data.check_in(db, expired, sent_at=NOW - timedelta(days=20), status="expired")
        test = clinic_data.visit(db, clinic_id, "test:dana@harbour.example", NOW)
        clinic_data.check_in(db, test, sent_at=NOW, test=True)
        assert db.scalar(select(WriteBack.id)) is None
    page = health(signed_in, generic_clinic)
    assert '<th scope="row">Check-ins sent</th><td>1</td><td>2</td>' in page
    assert '<th scope="row">… answered</th><td>1</td><td>1</td>' in page
    assert '<th scope="row">… expired unanswered</th><td>0</td><td>1</td>' in page
