"""Running the jobs: a long-lived worker with RQ's scheduler and cron, or a drain.

``run()`` is ``rapport worker``: an RQ worker started ``with_scheduler`` (so jobs
queued for later run on time), plus RQ's cron scheduler in a child process running the
sweeper every minute. ``drain()`` is ``rapport worker --burst``: it runs what is due,
including scheduled jobs as they fall due, and returns when nothing is left.
"""

from __future__ import annotations

import logging
import multiprocessing
import time

from flask import current_app
from rq import SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.scheduler import RQScheduler

from plugin.tasks import queue
from plugin.tasks.schedule import schedule
from plugin.web import inbox

log = logging.getLogger(__name__)


def enqueue_due() -> int:
    """Move scheduled jobs whose time has come into the queue; how many moved."""
    q = queue.queue()
    due = len(q.scheduled_job_registry.get_jobs_to_schedule(int(time.time())))
    if due:
        scheduler = RQScheduler([q], connection=queue.connection())
        scheduler.prepare_registries([q.name])
        scheduler.enqueue_scheduled_jobs()
    return due


def _next_scheduled_in() -> float | None:
    registry = queue.queue().scheduled_job_registry
    upcoming = registry.connection.zrange(registry.key, 0, 0, withscores=True)
    return upcoming[0][1] - time.time() if upcoming else None


class RapportWorker(Worker):
    """RQ's worker, leaving promptly when told to stop (``rq worker-pool -w``).

    RQ listens for commands on a thread that waits up to 60 s for its next message, and
    with redis-py 8 stopping that thread waits for the wait to end: a worker told to stop
    (a deploy, the end of a burst) could take a minute to leave. Here the thread is told
    to stop and left to end on its own (it is a daemon)."""

    def unsubscribe(self) -> None:
        if self.pubsub_thread:
            self.pubsub.unsubscribe()
            self.pubsub_thread.stop(timeout=0)


class _Unlistening:
    """A worker that runs what is queued now and leaves: it takes no commands at all."""

    def subscribe(self) -> None:
        self.pubsub_thread = None

    def unsubscribe(self) -> None:
        pass


class BurstWorker(_Unlistening, Worker):
    pass


class BurstSimpleWorker(_Unlistening, SimpleWorker):
    pass


def drain(*, wait_for_scheduled: float = 0, forking: bool = True) -> None:
    """Run queued and due jobs until none are left.

    ``wait_for_scheduled``: also wait for scheduled jobs (retries with backoff) that
    fall due within this many seconds.
    """
    worker_class = BurstWorker if forking else BurstSimpleWorker
    inbox.inbox(current_app).flush()  # this process's webhooks, stored but not yet queued
    q = queue.queue()
    while True:
        enqueue_due()
        if q.count:
            burst = worker_class([q], connection=queue.connection())
            burst.work(burst=True, logging_level="WARNING")
            if burst._shutdown_requested_date:
                # Ctrl-C (or SIGTERM) came while RQ's handlers were in place: its worker
                # finished the job at hand and returned. The caller is interrupted, as it
                # would have been had the signal come a moment later.
                raise KeyboardInterrupt
            continue
        wait = _next_scheduled_in()
        if wait is None or wait > wait_for_scheduled:
            return
        time.sleep(max(0.0, min(wait, 1.0)) + 0.01)


def _run_cron(factory, app_config: dict) -> None:
    app = factory({**app_config, "AUTO_MIGRATE": False})
    with app.app_context():
        scheduler = CronScheduler(connection=queue.connection(), logging_level="WARNING")
        schedule(scheduler.register, queue_name=app.config["QUEUE_NAME"],
                 sweep_interval=int(app.config["SWEEP_INTERVAL_SECONDS"]))
        scheduler.start()


def run(factory) -> None:
    """Work until stopped (Ctrl-C or SIGTERM): the worker, its scheduler and the cron
    (in a process of its own, whose application ``factory`` builds)."""
    app = current_app._get_current_object()
    overrides = {k: app.config[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY",
                                            "BASE_URL", "ENV")}
    overrides["INSTANCE_PATH"] = app.instance_path
    cron = multiprocessing.get_context("spawn").Process(
        target=_run_cron, args=(factory, overrides), name="rapport-cron", daemon=True)
    cron.start()
    try:
        RapportWorker([queue.queue()], connection=queue.connection()).work(
            with_scheduler=True, logging_level="INFO")
    finally:
        cron.terminate()
        cron.join(timeout=5)
