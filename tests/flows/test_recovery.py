"""An acknowledged event is never lost: a killed worker, a lost queue."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from rq.registry import StartedJobRegistry
from sqlalchemy import select

from plugin.pipeline import sweeper
from plugin.store import database as storage
from plugin.store.models import InboxEvent
from plugin.tasks.queue import qualified
from plugin.web import inbox
from tests.support.rapport import subprocess_env
from tests.support.waiting import wait_until


def processed(app) -> list[bool]:
    with app.app_context(), storage.session() as db:
        return [row.processed_at is not None for row in db.scalars(select(InboxEvent))]


def work_horse_of(worker_pid: int) -> int | None:
    """The worker's work horse, if it has one: RQ forks it and puts it in a process
    group of its own (the worker's other children stay in the worker's)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parent, group = int(fields[1]), int(fields[2])
        if parent == worker_pid and group == int(entry.name):
            return group
    return None


def test_worker_killed_mid_job_the_event_is_still_processed(
        app, deliver_generic, drain, mailbox, redis_conn):
    assert deliver_generic("appointment.completed").status_code == 202
    database = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    with app.app_context():
        ingest_job = qualified("ingest_events-1")

    # Hold the database's write lock so the worker's job stops inside ingest_event.
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    worker = subprocess.Popen(
        [sys.executable, "-m", "plugin", "worker"],
        env=subprocess_env(app, AUTO_MIGRATE="false"),  # migrating would wait on the lock
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    horse = None
    try:
        started = StartedJobRegistry("rapport", connection=redis_conn)
        wait_until(lambda: ingest_job in started.get_job_ids(), what="the job to start")
        # RQ runs the job in a work horse forked from the worker (in a process group of
        # its own); inside the job, it waits for the database's write lock.
        horse = wait_until(lambda: work_horse_of(worker.pid), what="the work horse")
    finally:
        if horse:
            os.kill(horse, signal.SIGKILL)
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


def test_events_survive_a_lost_queue(app, deliver_generic, drain, mailbox, redis_conn):
    for appointment in ("A-1", "A-2"):
        deliver_generic("appointment.completed", appointment_id=appointment,
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


def test_sweeper_leaves_fresh_events_to_their_job(app, deliver_generic, redis_conn):
    deliver_generic("appointment.completed")
    with app.app_context():
        assert sweeper.sweep()["inbox"] == 0  # younger than five minutes


def test_interrupted_send_is_never_repeated(app, generic_clinic, deliver_generic, drain, mailbox):
    """A worker that died between claiming and sending leaves the invitation marked
    'interrupted': the sweeper does not send it again."""
    from sqlalchemy import update

    from plugin.store.models import CheckIn

    deliver_generic("appointment.completed")
    with app.app_context():
        from plugin.pipeline.ingest import ingest_events

        ingest_events([1])
        with storage.session() as db:
            db.execute(update(CheckIn).values(status="sending",
                                                 claimed_at=CheckIn.created_at))
        app.config["SWEEP_AFTER_SECONDS"] = 0
        assert sweeper.sweep()["interrupted"] == 1
    drain()
    assert mailbox.messages == []
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(CheckIn.status)) == "interrupted"


def test_retention_drops_old_processed_events(app, deliver_generic, drain):
    from datetime import datetime, timedelta, timezone

    deliver_generic("appointment.completed")
    drain()
    with app.app_context():
        later = datetime.now(timezone.utc) + timedelta(days=8)
        assert sweeper.sweep(now=later)["inbox_deleted"] == 1


def test_a_database_set_up_afresh_on_the_same_redis_gets_its_own_jobs(
        app_factory, tmp_path, mailbox, callback_receiver):
    """The first instance's finished jobs (``ingest_events-1``, ``send_check_in-1``, …) are still in
    Redis when a new database numbers its rows from 1 again: the new instance's visit
    is still emailed, answered and written back at once, not left to the sweeper."""
    from plugin.pipeline import instruments
    from plugin.store.models import CheckIn
    from plugin.tasks import worker
    from tests.support.generic import add_generic_clinic, event_body, sign_generic, webhook_path
    from tests.support.survey import answer, answers_for, survey_path

    for run in ("first", "second"):
        app = app_factory(DATABASE_URL=f"sqlite:///{tmp_path / f'{run}.db'}")
        clinic = add_generic_clinic(app, callback_url=callback_receiver.url)
        client = app.test_client()
        body = event_body(appointment_id=f"A-{run}")
        assert client.post(webhook_path(clinic), data=body,
                           headers=sign_generic(body, clinic)).status_code == 202
        assert inbox.inbox(app).flush()
        with app.app_context():
            worker.drain(forking=False)
            with storage.session() as db:
                instrument = instruments.get(db.scalar(select(CheckIn.instrument_id)))
        answer(client, survey_path(mailbox.messages[-1]), answers_for(instrument))
        with app.app_context():
            worker.drain(forking=False)

    assert len(mailbox.messages) == 2
    assert len(callback_receiver.received) == 2
    first, second = (call.headers["Webhook-Id"] for call in callback_receiver.received)
    assert first != second  # a receiver that drops repeats keeps the second one
