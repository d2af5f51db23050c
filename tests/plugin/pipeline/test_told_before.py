"""A cancellation told just before a completion is read first, though the completion
was applied first by another worker (plugin/pipeline/told_before.py): the email waits
for the earlier event instead of going at once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from plugin.pipeline import sending
from plugin.pipeline.ingest import ingest_events
from plugin.store import database
from plugin.store.models import CheckIn, InboxEvent
from plugin.web import inbox


def stored_ids(app) -> list[int]:
    assert inbox.inbox(app).flush()
    with app.app_context(), database.session() as db:
        return list(db.scalars(select(InboxEvent.id).order_by(InboxEvent.id)))


def test_a_completion_applied_before_an_earlier_cancellation_sends_nothing(
        app, deliver_generic, drain, mailbox):
    told = datetime.now(timezone.utc)
    assert deliver_generic("appointment.cancelled",
                           occurred_at=told + timedelta(seconds=1)).status_code == 202
    assert deliver_generic("appointment.completed", occurred_at=told).status_code == 202
    cancellation, completion = stored_ids(app)
    with app.app_context():
        ingest_events([completion])  # this worker got the completion first
        with database.session() as db:
            check_in_id = db.scalar(select(CheckIn.id))
        sending.send(check_in_id, after_inbox=completion)
        assert mailbox.messages == []  # the cancellation, told first, is still waiting
        ingest_events([cancellation])
    drain(within=5)
    assert mailbox.messages == []
    with app.app_context(), database.session() as db:
        assert db.scalar(select(CheckIn.status)) == "cancelled"


def test_without_earlier_events_waiting_the_email_goes_at_once(
        app, deliver_generic, drain, mailbox):
    assert deliver_generic("appointment.completed").status_code == 202
    (completion,) = stored_ids(app)
    with app.app_context():
        ingest_events([completion])
        with database.session() as db:
            check_in_id = db.scalar(select(CheckIn.id))
        sending.send(check_in_id, after_inbox=completion)
    assert len(mailbox.messages) == 1
