"""Delivering the callback: retries on 429/5xx/timeouts honouring Retry-After, fail fast
on other 4xx, every attempt recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from plugin.clinics import health
from plugin.pipeline import instruments
from plugin.pipeline import write_back as writeback
from plugin.store import database as storage
from plugin.store.models import CheckIn, Clinic, WriteBack, WriteBackAttempt
from plugin.tasks.queue import backoff_seconds
from tests.support import clock
from tests.support.callbacks import RawAnswers
from tests.support.generic import event_body, sign_generic, webhook_path
from tests.support.survey import answer, answers_for, survey_path


@pytest.fixture
def answered(app, web, deliver_generic, drain, mailbox):
    """A client has answered; returns a function that runs the write-back."""
    deliver_generic("appointment.completed")
    drain()
    with app.app_context(), storage.session() as db:
        instrument = instruments.get(db.scalar(select(CheckIn.instrument_id)))
    answer(web, survey_path(mailbox.messages[0]), answers_for(instrument))
    return drain


def summary_clinic_id(app) -> int:
    with app.app_context(), storage.session() as db:
        return db.scalar(select(Clinic.id))


def write_back_state(app):
    with app.app_context(), storage.session() as db:
        row = db.scalar(select(WriteBack))
        attempts = [a.outcome for a in db.scalars(
            select(WriteBackAttempt).order_by(WriteBackAttempt.id))]
        return row.status, attempts, row.last_error


def test_429_is_retried_after_retry_after(app, callback_receiver, answered):
    callback_receiver.answer(429, {"Retry-After": "7"})
    answered(within=10)
    assert len(callback_receiver.received) == 2
    assert write_back_state(app)[:2] == ("delivered", ["retry", "delivered"])
    with app.app_context(), storage.session() as db:
        row = db.scalar(select(WriteBack))
        first = db.scalars(select(WriteBackAttempt).order_by(WriteBackAttempt.id)).first()
        # Scheduled no sooner than the receiver asked (the backoff alone is 0.5–1 s here).
        assert (row.next_attempt_at - first.at).total_seconds() >= 7
    first, second = callback_receiver.received
    assert first.headers["Webhook-Id"] == second.headers["Webhook-Id"]
    assert first.body == second.body


def test_5xx_is_retried(app, callback_receiver, answered):
    callback_receiver.answer(503, times=2)
    answered(within=10)
    assert write_back_state(app)[:2] == ("delivered", ["retry", "retry", "delivered"])


@pytest.fixture
def answered_with(app_factory, generic_clinic_factory, mailbox):
    """Like ``answered``, for an app with other settings and a clinic's callback URL."""

    def build(callback_url: str | None = None, **settings):
        app = app_factory(**settings)
        target = generic_clinic_factory(callback_url=callback_url)
        body = event_body()
        test_client = app.test_client()
        test_client.post(webhook_path(target), data=body, headers=sign_generic(body, target))
        clock.drain(app)
        with app.app_context():
            instrument = instruments.get("rapport-checkin")
        answer(test_client, survey_path(mailbox.messages[0]), answers_for(instrument))
        clock.drain(app, within=10)
        return app

    return build


def test_timeout_is_retried(callback_receiver, answered_with):
    callback_receiver.answer(200, delay=1.0)
    app = answered_with(HTTP_TIMEOUT=0.3)
    status, attempts, _ = write_back_state(app)
    assert (status, attempts) == ("delivered", ["retry", "delivered"])


def test_other_4xx_fails_fast_and_says_why(app, callback_receiver, answered):
    callback_receiver.answer(400)
    answered(within=5)
    assert len(callback_receiver.received) == 1
    status, attempts, error = write_back_state(app)
    assert (status, attempts) == ("failed", ["failed"])
    assert "answered 400" in error
    with app.app_context(), storage.session() as db:
        summary = health.clinic_summary(db, db.scalar(select(Clinic)))
    assert summary["write_backs_failed"] == 1
    assert summary["last_write_back_error"] == error  # shown by `rapport clinic list`

    callback_receiver.answer(204)  # the clinic mended its receiver
    with app.app_context():
        # what `rapport clinic retry-write-backs KEY` does
        assert writeback.retry_failed(summary_clinic_id(app)) == 1
    answered()
    assert len(callback_receiver.received) == 2
    status, attempts, _ = write_back_state(app)
    assert (status, attempts) == ("delivered", ["failed", "delivered"])


def test_unreachable_callback_is_retried_then_given_up_plainly(answered_with):
    app = answered_with(callback_url="http://127.0.0.1:9/unreachable",
                        WRITE_BACK_MAX_ATTEMPTS=2)
    status, attempts, error = write_back_state(app)
    assert (status, attempts) == ("failed", ["retry", "failed"])
    assert "cannot connect" in error and "gave up after 2 attempts" in error


def test_backoff_grows_and_honours_retry_after():
    assert 15 <= backoff_seconds(1, None) <= 30
    assert 60 <= backoff_seconds(3, None) <= 120
    assert backoff_seconds(1, 600) == 600
    assert 1800 <= backoff_seconds(20, None) <= 3600


def test_clinic_is_paused_not_retried_when_credentials_are_refused(app, callback_receiver,
                                                                   answered):
    """Generic callbacks have no credentials to refuse; a platform's AuthError pauses the
    clinic — shown here through the clinic's status gate."""
    with app.app_context(), storage.session() as db:
        db.scalar(select(Clinic)).status = "needs_reconnecting"
    answered()
    assert callback_receiver.received == []
    assert write_back_state(app)[0] == "paused"


def test_a_delivery_cut_short_by_a_dead_worker_is_recorded_and_made_again(
        app, callback_receiver, answered):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from plugin.pipeline import sweeper

    with app.app_context(), storage.session() as db:  # claimed, then the worker died
        db.execute(update(WriteBack).values(
            status="delivering", attempts=1,
            claimed_at=datetime.now(timezone.utc) - timedelta(minutes=10)))
    with app.app_context():
        app.config["SWEEP_AFTER_SECONDS"] = 0
        assert sweeper.sweep()["write_backs"] == 1
    answered()
    assert len(callback_receiver.received) == 1
    status, attempts, _ = write_back_state(app)
    assert (status, attempts) == ("delivered", ["interrupted", "delivered"])


# An answer whose body cannot be read (a broken chunked encoding), like a proxy cut off
# mid-answer.
GARBLED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n"


def test_an_answer_that_cannot_be_read_is_retried_then_given_up_plainly(answered_with):
    """Any failed exchange is an attempt recorded and retried within the limit, never a
    write-back left 'delivering' for the sweeper to send again every few minutes."""
    receiver = RawAnswers(GARBLED)
    try:
        app = answered_with(callback_url=receiver.url, WRITE_BACK_MAX_ATTEMPTS=2)
    finally:
        receiver.close()
    status, attempts, error = write_back_state(app)
    assert (status, attempts) == ("failed", ["retry", "failed"])
    assert receiver.url in error and "gave up after 2 attempts" in error
    assert len(receiver.requests) == 2
