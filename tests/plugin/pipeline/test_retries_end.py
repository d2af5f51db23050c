"""Every retry has an end (finding: retries without an end): a write-back answered
``Retry-After: inf``, a write-back whose every attempt is cut short, a stored event
whose processing always fails."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from handlers.base import retry_after_seconds
from plugin.pipeline import sweeper
from plugin.pipeline.ingest import IngestError, ingest_events
from plugin.store import database
from plugin.store.models import Clinic, InboxEvent, WriteBack
from plugin.tasks.queue import backoff_seconds
from tests.support.callbacks import answered_with_callback


def state(app):
    with app.app_context(), database.session() as db:
        row = db.scalar(select(WriteBack))
        return row.status, row.attempts, row.last_error


def test_retry_after_inf_is_not_a_number_of_seconds():
    assert retry_after_seconds("inf") is None
    assert retry_after_seconds("nan") is None
    assert retry_after_seconds("1e999") is None
    assert retry_after_seconds("99999999999") == 86400
    assert backoff_seconds(1, float("inf"), base=1) <= 86400
    assert backoff_seconds(500, None) <= 3600


def test_a_503_with_retry_after_inf_is_retried_then_given_up(
        app_factory, mailbox, callback_receiver):
    callback_receiver.answer(503, {"Retry-After": "inf"}, times=3)
    app, _ = answered_with_callback(app_factory, mailbox, callback_receiver.url,
                                    WRITE_BACK_MAX_ATTEMPTS=1)
    status, attempts, error = state(app)
    assert (status, attempts) == ("failed", 1)
    assert "answered 503" in error and "gave up after 1 attempts" in error


def test_attempts_cut_short_every_time_end_at_the_limit(app_factory, mailbox, callback_receiver):
    """A worker killed (or the job's timeout) in the middle of each attempt: the row is
    left 'delivering'; the sweeper does not reset it for ever."""
    app, _ = answered_with_callback(app_factory, mailbox, callback_receiver.url,
                                    WRITE_BACK_MAX_ATTEMPTS=3)
    long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    with app.app_context():
        app.config["SWEEP_AFTER_SECONDS"] = 0
        with database.session() as db:
            db.execute(update(WriteBack).values(status="delivering", attempts=3,
                                                claimed_at=long_ago))
        sweeper.sweep()
    status, attempts, error = state(app)
    assert (status, attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in error
    with app.app_context():
        assert sweeper.sweep()["write_backs"] == 0


def test_a_claimed_write_back_at_its_limit_is_not_tried_again(app_factory, mailbox,
                                                              callback_receiver):
    app, _ = answered_with_callback(app_factory, mailbox, callback_receiver.url,
                                    WRITE_BACK_MAX_ATTEMPTS=2)
    delivered = len(callback_receiver.received)
    from plugin.pipeline.write_back import deliver_write_back as write_back

    with app.app_context():
        with database.session() as db:
            row = db.scalar(select(WriteBack))
            row.status, row.attempts, write_back_id = "pending", 2, row.id
        write_back(write_back_id)
    assert len(callback_receiver.received) == delivered
    assert state(app)[0] == "failed"


def test_an_event_whose_processing_always_fails_is_given_up(app_factory, generic_clinic_factory):
    """Stored before the door checked years: a visit ending in year 9999, which no send
    time can be computed from. Each run counts; at the limit the event is given up and
    its body dropped; the sweeper stops queueing it."""
    app = app_factory(INBOX_MAX_ATTEMPTS=3)
    generic_clinic_factory()
    event = {"platform": "generic", "event_id": "msg_1",
             "occurred_at": "2026-11-25T15:00:00+00:00", "appointment_id": "A-9",
             "status": "completed", "client": {"id": "C-9", "email": "kim@example.com",
                                               "first_name": "Kim", "locale": "en",
                                               "unsubscribed": False},
             "start": "9999-12-31T22:00:00+00:00", "end": "9999-12-31T23:00:00+00:00",
             "service": None, "therapist": None, "version": None, "location_id": None}
    with app.app_context(), database.session() as db:
        row = InboxEvent(clinic_id=db.scalar(select(Clinic.id)), delivery_id="msg_1",
                         body=json.dumps(event).encode(), headers={}, events=[event],
                         received_at=datetime.now(timezone.utc) - timedelta(hours=1))
        db.add(row)
        db.flush()
        inbox_id = row.id
    with app.app_context():
        for _ in range(2):
            with pytest.raises(IngestError):  # the job fails, to be retried
                ingest_events([inbox_id])
        with database.session() as db:
            row = db.get(InboxEvent, inbox_id)
            assert (row.attempts, row.processed_at) == (2, None)
        ingest_events([inbox_id])  # the third failure gives up rather than failing the job
        with database.session() as db:
            row = db.get(InboxEvent, inbox_id)
            assert row.processed_at is not None and row.body is None and row.events is None
            assert "gave up after 3 attempts" in row.last_error
        app.config["SWEEP_AFTER_SECONDS"] = 0
        assert sweeper.sweep()["inbox"] == 0


def test_events_never_processed_are_given_up_after_the_retention_period(app, generic_clinic):
    with app.app_context(), database.session() as db:
        db.add(InboxEvent(clinic_id=db.scalar(select(Clinic.id)), delivery_id="old",
                          body=b'{"client": "kim@example.com"}', headers={}, events=None,
                          received_at=datetime.now(timezone.utc) - timedelta(days=8)))
    with app.app_context():
        assert sweeper.sweep()["inbox_given_up"] == 1
        with database.session() as db:
            row = db.scalar(select(InboxEvent))
            assert row.body is None and "not processed within 7 days" in row.last_error
        later = datetime.now(timezone.utc) + timedelta(days=8)
        assert sweeper.sweep(now=later)["inbox_deleted"] == 1
