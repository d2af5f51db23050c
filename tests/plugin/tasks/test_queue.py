"""Jobs by urgency: sends in their own queue, everything else ahead of them
(plugin/tasks/queue.py, plugin/tasks/worker.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rq import Queue
from rq.job import Job

from plugin.pipeline import sending, write_back
from plugin.tasks import queue, worker

LATER = datetime.now(timezone.utc) + timedelta(hours=1)


def test_sends_go_to_the_sends_queue_and_write_backs_to_the_urgent_one(app, redis_conn):
    with app.app_context():
        assert sending.queue_send(999, None)
        assert sending.queue_reminder(999, None)
        assert write_back.queue_write_back(999)
        assert queue.queue_names("rapport") == ["rapport", "rapport-sends"]
        sends, urgent = Queue("rapport-sends", connection=redis_conn), queue.queue()
        assert [job.func_name for job in sends.jobs] == [
            "plugin.pipeline.sending.send_check_in", "plugin.pipeline.sending.send_reminder"]
        assert [job.func_name for job in urgent.jobs] == [
            "plugin.pipeline.write_back.deliver_write_back"]


def test_a_send_for_later_waits_in_the_one_schedule_then_goes_to_the_sends_queue(
        app, redis_conn):
    with app.app_context():
        sending.queue_send(999, LATER)
        (job_id,) = queue.queue().scheduled_job_registry.get_job_ids()
        job = Job.fetch(job_id, connection=redis_conn)
        queue.queue().scheduled_job_registry.schedule(job, datetime.now(timezone.utc))
        assert worker.enqueue_due() == 1
        assert queue.queue().count == 0
        assert queue.queue(sends=True).job_ids == [job_id]


def test_a_write_back_queued_behind_a_backlog_of_sends_runs_first(app, redis_conn, drain):
    with app.app_context():
        for check_in_id in range(1000, 1020):
            sending.queue_send(check_in_id, None)  # no such check-ins: each does nothing
        write_back.queue_write_back(999)
        ids = queue.queue(sends=True).job_ids + queue.queue().job_ids
    drain()
    ended = {job.func_name.rsplit(".", 1)[1]: job.ended_at for job in
             Job.fetch_many(ids, connection=redis_conn)}
    first_send = min(job.ended_at for job in Job.fetch_many(ids[:-1], connection=redis_conn))
    assert ended["deliver_write_back"] < first_send
