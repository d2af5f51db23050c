"""Running the jobs: a long-lived worker with RQ's scheduler and cron, or a drain.

``run()`` is ``rapport worker``: an RQ worker on both queues, most urgent first
(``tasks.queue``), started ``with_scheduler`` (so jobs queued for later run on time),
plus RQ's cron scheduler in a child process running the sweeper every minute.
``drain()`` is ``rapport worker --burst``: it runs what is due, including scheduled jobs
as they fall due, and returns when nothing is left. Both run their jobs in one warm,
reusable work horse (``tasks.horse``), as does ``rq worker-pool -w
plugin.tasks.worker.RapportWorker``.
"""

from __future__ import annotations

import logging
import multiprocessing
import time

from flask import current_app
from rq import Queue, SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.utils import current_timestamp

from plugin.tasks import queue
from plugin.tasks.horse import WarmHorse
from plugin.tasks.schedule import schedule
from plugin.web import inbox

log = logging.getLogger(__name__)


class RapportScheduler(RQScheduler):
    """RQ's scheduler, putting each job that falls due in the queue for its kind: the
    sends queued for later wait in the urgent queue's schedule (``tasks.queue``), and go
    to the sends queue when their time comes."""

    def enqueue_scheduled_jobs(self):
        if not self._scheduled_job_registries and self._acquired_locks:
            self.prepare_registries()
        for registry in self._scheduled_job_registries:
            if registry.name.endswith(queue.SENDS_SUFFIX):
                continue
            due = [job for job in Job.fetch_many(
                registry.get_jobs_to_schedule(current_timestamp()),
                connection=self.connection, serializer=self.serializer)
                if job is not None and _sends(job)]
            if not due:
                continue
            sends = Queue(registry.name + queue.SENDS_SUFFIX, connection=self.connection,
                          serializer=self.serializer)
            with self.connection.pipeline() as pipeline:
                for job in due:
                    sends._enqueue_job(job, pipeline=pipeline)
                    registry.remove(job.id, pipeline=pipeline)
                pipeline.execute()
        super().enqueue_scheduled_jobs()


def _sends(job: Job) -> bool:
    try:
        return bool(getattr(job.func, "sends", False))
    except Exception:  # noqa: BLE001 - a job whose function is gone is RQ's to report
        return False


def enqueue_due() -> int:
    """Move scheduled jobs whose time has come into their queues; how many moved."""
    queues = queue.queues()
    due = sum(len(q.scheduled_job_registry.get_jobs_to_schedule(int(time.time())))
              for q in queues)
    if due:
        scheduler = RapportScheduler(queues, connection=queue.connection())
        scheduler.prepare_registries([q.name for q in queues])
        scheduler.enqueue_scheduled_jobs()
    return due


def _next_scheduled_in() -> float | None:
    upcoming = []
    for q in queue.queues():
        registry = q.scheduled_job_registry
        upcoming += registry.connection.zrange(registry.key, 0, 0, withscores=True)
    return min(score for _, score in upcoming) - time.time() if upcoming else None


class RapportWorker(WarmHorse, Worker):
    """RQ's worker, running its jobs in one warm horse (:mod:`plugin.tasks.horse`) and
    leaving promptly when told to stop (``rq worker-pool -w``).

    RQ listens for commands on a thread that waits up to 60 s for its next message, and
    with redis-py 8 stopping that thread waits for the wait to end: a worker told to stop
    (a deploy, the end of a burst) could take a minute to leave. Here the thread is told
    to stop and left to end on its own (it is a daemon)."""

    def unsubscribe(self) -> None:
        if self.pubsub_thread:
            self.pubsub.unsubscribe()
            self.pubsub_thread.stop(timeout=0)

    def _start_scheduler(self, burst=False, logging_level="INFO", date_format=None,
                         log_format=None):
        """RQ's, with :class:`RapportScheduler` in place of RQ's scheduler."""
        self.scheduler = RapportScheduler(
            self.queues, connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format or DEFAULT_LOGGING_DATE_FORMAT,
            log_format=log_format or DEFAULT_LOGGING_FORMAT, serializer=self.serializer)
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()


class _Unlistening:
    """A worker that runs what is queued now and leaves: it takes no commands at all."""

    def subscribe(self) -> None:
        self.pubsub_thread = None

    def unsubscribe(self) -> None:
        pass


class BurstWorker(_Unlistening, WarmHorse, Worker):
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
    queues = queue.queues()
    while True:
        enqueue_due()
        if any(q.count for q in queues):
            burst = worker_class(queues, connection=queue.connection())
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
        RapportWorker(queue.queues(), connection=queue.connection()).work(
            with_scheduler=True, logging_level="INFO")
    finally:
        cron.terminate()
        cron.join(timeout=5)
