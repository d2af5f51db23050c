"""Counting each clinic's calls to its platform, per month: every answer counted once, for
the clinic it was for, whichever platform; a call made while a transaction is open is
counted once it ends, never waiting on that transaction's own locks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from handlers.base import http
from plugin.cli import main
from plugin.clinics import api_calls, records
from plugin.clinics.platforms import credentials_for
from plugin.store import database
from plugin.store.models import ApiCalls, Clinic
from tests.support.generic import generic_credentials
from tests.support.square import square_credentials
from tests.support.survey import answer_last_check_in


def calls(app, clinic_id: int) -> int:
    with app.app_context(), database.session() as db:
        return api_calls.this_month(db, clinic_id)


def clinic_id_of(app, key: str) -> int:
    with app.app_context(), database.session() as db:
        return records.by_key(db, key).id


def add_generic(app, callback_receiver, name="Other") -> int:
    with app.app_context(), database.session() as db:
        created = records.create(db, name=name, platform="generic",
                                 credentials=generic_credentials(callback_receiver.url))
        return created.clinic.id


def test_the_callback_a_generic_clinic_is_sent_is_counted(app, generic_clinic, deliver_generic,
                                                          drain, mailbox, callback_receiver):
    clinic_id = clinic_id_of(app, generic_clinic["key"])
    assert deliver_generic().status_code == 202
    drain()
    assert calls(app, clinic_id) == 0  # nothing asked of the platform so far
    answer_last_check_in(app, mailbox, 4)
    drain()

    assert len(callback_receiver.received) == 1
    assert calls(app, clinic_id) == 1


def test_calls_are_counted_per_clinic_and_per_month(app, callback_receiver):
    first = add_generic(app, callback_receiver, "One")
    second = add_generic(app, callback_receiver, "Two")
    with app.app_context():
        with database.session() as db:
            one = credentials_for(db.get(Clinic, first))
            two = credentials_for(db.get(Clinic, second))
        for _ in range(3):
            http(one).post(callback_receiver.url, data=b"{}")
        http(two).post(callback_receiver.url, data=b"{}")
        api_calls.add(database.engine(), first, "2026-01", 40)  # an earlier month
        with database.session() as db:
            kept = dict(db.execute(select(ApiCalls.month, ApiCalls.calls)
                                   .where(ApiCalls.clinic_id == first)).all())
            assert api_calls.this_month(
                db, first, now=datetime(2026, 1, 31, 23, 59, tzinfo=timezone.utc)) == 40
    assert calls(app, first) == 3 and calls(app, second) == 1
    assert kept == {"2026-01": 40, api_calls.month_of(datetime.now(timezone.utc)): 3}


def test_a_request_that_got_no_answer_is_not_counted(app, callback_receiver):
    clinic_id = add_generic(app, callback_receiver)
    with app.app_context():
        with database.session() as db:
            credentials = credentials_for(db.get(Clinic, clinic_id))
        with pytest.raises(Exception, match="onnection"):
            http(credentials).get("http://127.0.0.1:9/", timeout=2)
    assert calls(app, clinic_id) == 0


def test_a_call_made_inside_a_transaction_is_counted_once_it_ends(app_factory, database_url,
                                                                 callback_receiver):
    """Renewing a token happens under the clinic's row lock (and on SQLite any open
    transaction holds the write lock): a count written there would wait on its own
    caller's locks."""
    app = app_factory(DATABASE_URL=database_url)
    clinic_id = add_generic(app, callback_receiver)
    with app.app_context(), database.session() as db:
        clinic = db.get(Clinic, clinic_id, with_for_update=True)
        clinic.status_detail = "being changed"  # this transaction writes, too
        http(credentials_for(clinic)).post(callback_receiver.url, data=b"{}")
        http(credentials_for(clinic)).post(callback_receiver.url, data=b"{}")
    assert calls(app, clinic_id) == 2


def test_clinic_list_shows_the_calls_of_this_month(app, generic_clinic, callback_receiver,
                                                   monkeypatch, redis_url):
    clinic_id = clinic_id_of(app, generic_clinic["key"])
    with app.app_context():
        api_calls.add(database.engine(), clinic_id,
                      api_calls.month_of(datetime.now(timezone.utc)), 12)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL"):
        monkeypatch.setenv(f"RAPPORT_{name}", str(app.config[name]))
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", app.instance_path)
    runner = CliRunner()
    listed = runner.invoke(main, ["clinic", "list", "--json"], catch_exceptions=False)
    assert json.loads(listed.output)[0]["api_calls_this_month"] == 12
    text = runner.invoke(main, ["clinic", "list"], catch_exceptions=False).output
    assert "API calls this month: 12" in text


def test_squares_calls_are_counted_for_its_clinic(square_app, square_sandbox, square_drain,
                                                  mailbox):
    app, url = square_app
    with app.app_context(), database.session() as db:
        credentials = square_credentials(
            access_token=square_sandbox.personal_access_token,
            webhook_signature_key="counting-key",
            notification_url=f"{url}/webhooks/square/harbour")
        clinic_id = records.create(
            db, name="Harbour", platform="square", credentials=credentials,
            key="harbour", settings={"timing": {"send_delay_minutes": 0,
                                                "completion_grace_minutes": 0,
                                                "window_start": "00:00",
                                                "window_end": "24:00"}}).clinic.id
    customer = square_sandbox.seed_customer(given_name="Sam", email_address="sam@example.com")
    ended = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=30)
    booking = square_sandbox.seed_booking(customer_id=customer["id"],
                                          start_at=ended - timedelta(minutes=60),
                                          duration_minutes=60)
    asked = len(square_sandbox.requests)
    event = square_sandbox.booking_event("booking.created", booking["id"])
    square_sandbox.deliver(f"{url}/webhooks/square/harbour", event,
                           signature_key="counting-key",
                           notification_url=f"{url}/webhooks/square/harbour")
    square_drain()

    made = len(square_sandbox.requests) - asked
    assert len(mailbox.messages) == 1  # read the booking and the customer, then emailed
    assert made >= 2
    assert calls(app, clinic_id) == made
