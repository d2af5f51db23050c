"""An acknowledged event is never lost: a killed worker, a lost queue."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import subprocess_env
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from plugin import inbox, storage, sweeper
from plugin.models import InboxEvent


def processed(app) -> list[bool]:
    with app.app_context(), storage.session() as db:
        return [row.processed_at is not None for row in db.scalars(select(InboxEvent))]


def wait_until(condition, timeout: float = 30, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {message}")
        time.sleep(0.05)


def test_worker_killed_mid_job_the_event_is_still_processed(
        app, deliver, drain, mailbox, redis_conn):
    assert deliver("appointment.completed").status_code == 202
    database = app.config["DATABASE_URL"].removeprefix("sqlite:///")

    # Hold the database's write lock so the worker's job stops inside ingest_event.
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    worker = subprocess.Popen(
        [sys.executable, "-m", "plugin", "worker"],
        env=subprocess_env(app, AUTO_MIGRATE="false"),  # migrating would wait on the lock
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = StartedJobRegistry("rapport", connection=redis_conn)
        wait_until(lambda: "ingest-1" in started.get_job_ids(), message="job to start")
        time.sleep(0.3)  # well inside the job, waiting on the lock
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        blocker.execute("ROLLBACK")
        blocker.close()
    assert processed(app) == [False]
    assert mailbox.messages == []

    with app.app_context():
        app.config["SWEEP_AFTER_SECONDS"] = 0
        counts = sweeper.sweep()
    assert counts["inbox"] == 1
    drain()
    assert processed(app) == [True]
    assert len(mailbox.messages) == 1


def test_events_survive_a_lost_queue(app, deliver, drain, mailbox, redis_conn):
    for appointment in ("A-1", "A-2"):
        deliver("appointment.completed", appointment_id=appointment,
                client_id=f"C-{appointment}", email=f"{appointment}@example.com")
    assert inbox.inbox(app).flush()
    redis_conn.flushdb()  # Redis restarted without persistence
    drain()
    assert processed(app) == [False, False]
    with app.app_context():
        app.config["SWEEP_AFTER_SECONDS"] = 0
        sweeper.sweep()
    drain()
    assert processed(app) == [True, True]
    assert sorted(m["To"] for m in mailbox.messages) == ["A-1@example.com", "A-2@example.com"]
    with app.app_context():
        sweeper.sweep()  # nothing left: sweeping again sends nothing
    drain()
    assert len(mailbox.messages) == 2


def test_sweeper_leaves_fresh_events_to_their_job(app, deliver, redis_conn):
    deliver("appointment.completed")
    with app.app_context():
        assert sweeper.sweep()["inbox"] == 0  # younger than five minutes


def test_interrupted_send_is_never_repeated(app, clinic, deliver, drain, mailbox):
    """A worker that died between claiming and sending leaves the invitation marked
    'interrupted': the sweeper does not send it again."""
    from sqlalchemy import update

    from plugin.models import Invitation

    deliver("appointment.completed")
    with app.app_context():
        from plugin import jobs

        jobs.ingest_events([1])
        with storage.session() as db:
            db.execute(update(Invitation).values(status="sending",
                                                 claimed_at=Invitation.created_at))
        app.config["SWEEP_AFTER_SECONDS"] = 0
        assert sweeper.sweep()["interrupted"] == 1
    drain()
    assert mailbox.messages == []
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Invitation.status)) == "interrupted"


def test_retention_drops_old_processed_events(app, deliver, drain):
    from datetime import datetime, timedelta, timezone

    deliver("appointment.completed")
    drain()
    with app.app_context():
        later = datetime.now(timezone.utc) + timedelta(days=8)
        assert sweeper.sweep(now=later)["inbox_deleted"] == 1
