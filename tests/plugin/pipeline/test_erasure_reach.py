"""Erasure reaches everything (finding: erasure can fail or stay incomplete): a deeply
nested stored body, events never processed, stored headers, and the jobs in Redis whose
errors quote the client's address."""

from __future__ import annotations

from datetime import datetime, timezone

from rq.job import Job
from rq.results import Result
from sqlalchemy import select

from plugin.pipeline import erasure
from plugin.store import database
from plugin.store.models import Clinic, InboxEvent
from plugin.tasks import queue

DEEP = b"[" * 5000 + b"]" * 5000


def _event(client_id: str, email: str) -> dict:
    return {"platform": "generic", "event_id": f"e-{client_id}",
            "occurred_at": "2026-11-25T15:00:00+00:00", "appointment_id": f"A-{client_id}",
            "status": "completed", "client": {"id": client_id, "email": email,
                                              "first_name": "Sam", "locale": "en",
                                              "unsubscribed": False},
            "start": "2026-11-25T14:00:00+00:00", "end": "2026-11-25T15:00:00+00:00",
            "service": None, "therapist": None, "version": None, "location_id": None}


def test_erasure_reaches_every_stored_event(app, generic_clinic):
    now = datetime.now(timezone.utc)
    with app.app_context(), database.session() as db:
        clinic_id = db.scalar(select(Clinic.id))
        db.add_all([
            # Never processed: the client's email and name would have stayed for ever.
            InboxEvent(clinic_id=clinic_id, delivery_id="pending", received_at=now,
                       body=b'{"email": "sam@example.com"}',
                       headers={"x-client-email": "sam@example.com"},
                       events=[_event("C-7", "sam@example.com"),
                               _event("C-8", "alex@example.com")]),
            # Stored before events were kept, nested past what a recursive walk survives.
            InboxEvent(clinic_id=clinic_id, delivery_id="deep", received_at=now,
                       processed_at=now, headers={}, events=None,
                       body=b'{"client": {"id": "C-7"}, "x": ' + DEEP + b"}"),
            # Another client's, nested just as deep: left alone.
            InboxEvent(clinic_id=clinic_id, delivery_id="other", received_at=now,
                       processed_at=now, headers={}, events=None,
                       body=b'{"client": {"id": "C-8"}, "x": ' + DEEP + b"}"),
        ])
    with app.app_context(), database.session() as db:
        counts = erasure.erase_client(db, clinic_id, "C-7")
    assert (counts["event_bodies"], counts["events_pending"]) == (2, 1)
    with app.app_context(), database.session() as db:
        rows = {row.delivery_id: row for row in db.scalars(select(InboxEvent))}
        pending = rows["pending"]
        assert (pending.body, pending.headers) == (None, {})
        # Only the erased client's event went: the other is still processed.
        assert [event["client"]["id"] for event in pending.events] == ["C-8"]
        assert rows["deep"].body is None
        assert rows["other"].body is not None


def test_erasure_deletes_failed_jobs_quoting_the_address(app, generic_clinic, redis_conn):
    with app.app_context():
        failed = queue.queue(sends=True).failed_job_registry  # where a send fails
        job = Job.create("plugin.pipeline.sending.send_check_in", args=(999,),
                         connection=queue.connection(), id="failed-about-sam")
        job.save()
        # As the worker records a failure: its result, then the registry.
        Result.create_failure(job, ttl=600, exc_string="SMTPRecipientsRefused: "
                              "<sam@example.com> unknown user")
        failed.add(job)
        other = Job.create("plugin.pipeline.sending.send_check_in", args=(998,),
                           connection=queue.connection(), id="failed-about-alex")
        other.save()
        Result.create_failure(other, ttl=600, exc_string="SMTPRecipientsRefused: "
                              "<alex@example.com>")
        failed.add(other)
    now = datetime.now(timezone.utc)
    with app.app_context(), database.session() as db:
        db.add(InboxEvent(clinic_id=db.scalar(select(Clinic.id)), delivery_id="d",
                          received_at=now, processed_at=now, body=b"{}", headers={},
                          events=[_event("C-7", "sam@example.com")]))
    with app.app_context(), database.session() as db:
        counts = erasure.erase_client(db, db.scalar(select(Clinic.id)), "C-7")
    assert counts["jobs"] == 1
    with app.app_context():
        assert queue.queue(sends=True).failed_job_registry.get_job_ids() == ["failed-about-alex"]
