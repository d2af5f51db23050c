"""RQ on Redis: the connection, the queues, how jobs are queued and what they are called.

Two queues, which every worker takes most urgent first: ``QUEUE_NAME`` (``rapport``) for
everything that keeps the pipeline moving — events, completion checks, write-backs,
booking notes, the sweeper, token renewal — and ``<QUEUE_NAME>-sends`` for the jobs
marked ``@sends`` (check-in emails, reminders, expiries), which come by the thousand.
A write-back queued behind ten thousand sends runs next, not after them. A job queued
for later waits in one schedule, the first queue's, whatever its kind; when its time
comes, the worker's scheduler (``tasks.worker.RapportScheduler``) puts it in the queue
for its kind.

A job's id is built here, and only here (:func:`job_id`): the job's name and the id of
the row it works on, so the same step is never queued twice at once; a job queued again
for a later time, or by the sweeper, carries that too. Every job is idempotent, so a
step that does run twice is harmless. Each job has one helper, beside it, that queues it.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import redis
from flask import Flask, current_app
from rq import Queue, Retry, get_current_job
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from handlers.base import RETRY_AFTER_LIMIT
from plugin.store.identity import installation_id
from plugin.tasks.embedded_redis import EmbeddedRedis

log = logging.getLogger(__name__)

JOB_TIMEOUT = 120
DONE = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})


def init_app(app: Flask) -> None:
    url = app.config["REDIS_URL"]
    if not url:
        url = EmbeddedRedis(Path(app.instance_path) / "redis").start()
        app.config["REDIS_URL"] = url
    app.extensions["rapport.redis"] = redis.Redis.from_url(url)


def connection() -> redis.Redis:
    return current_app.extensions["rapport.redis"]


SENDS_SUFFIX = "-sends"


def queue_names(name: str) -> list[str]:
    """The queues of the installation whose ``QUEUE_NAME`` is ``name``, most urgent
    first: what a worker listens to, in that order."""
    return [name, name + SENDS_SUFFIX]


def queue(sends: bool = False) -> Queue:
    """The urgent queue, or with ``sends`` the queue of the emails."""
    name = current_app.config["QUEUE_NAME"] + (SENDS_SUFFIX if sends else "")
    return Queue(name, connection=connection())


def queues() -> list[Queue]:
    """Both queues, most urgent first."""
    return [queue(), queue(sends=True)]


def queue_for(job: Callable) -> Queue:
    return queue(sends=getattr(job, "sends", False))


def job_options() -> dict:
    """Timeouts, retention and retries every Rapport job gets."""
    intervals = list(current_app.config["JOB_RETRY_INTERVALS"])
    return {"timeout": JOB_TIMEOUT, "result_ttl": 3600, "failure_ttl": 30 * 86400,
            "retry": Retry(max=len(intervals), interval=intervals)}


def backoff_seconds(attempt: int, retry_after: float | None = None, *, base: float = 30,
                    cap: float = 3600) -> int:
    """Exponential backoff with jitter, never sooner than the platform asked.

    ``attempt`` counts from 1: about ``base`` seconds, then doubling up to ``cap``, each
    drawn between half and all of that step so that many jobs throttled together do not
    come back together.
    """
    step = min(cap, base * 2 ** max(0, min(attempt, 64) - 1))
    delay = step * (0.5 + random.random() / 2)
    asked = retry_after if retry_after is not None and math.isfinite(retry_after) else 0
    # Never sooner than asked, and never later than a day (RQ schedules by the second).
    return int(min(max(delay, asked, 1), RETRY_AFTER_LIMIT))


def retry_later(retry_after: float | None = None) -> Retry:
    """What a job returns to be run again (a 429, a 5xx, a timeout): after
    ``retry_after`` when the platform said, else with :func:`backoff_seconds` from the
    first configured interval, at most as many times as there are intervals."""
    intervals = list(current_app.config["JOB_RETRY_INTERVALS"])
    running = get_current_job()
    attempt = (running.number_of_retries or 0) + 1 if running is not None else 1
    delay = backoff_seconds(attempt, retry_after, base=intervals[0])
    return Retry(max=len(intervals), interval=[delay])


def job_id(job: Callable, *parts: object) -> str:
    """``job``'s id for the row it works on, and what tells this queuing apart:
    ``send_check_in-12``; ``send_check_in-12-at1764345600`` when queued again for a new
    time (:func:`at_tag`); ``send_check_in-12-sweep1764345600`` when the sweeper nudged it."""
    return "-".join([job.__name__, *(str(part) for part in parts)])


def at_tag(moment: datetime) -> str:
    return f"at{int(moment.timestamp())}"


def enqueue(job: Callable, *args, id_parts: tuple, at: datetime | None = None,
            unique: bool = True, requeue_finished: bool = False) -> bool:
    """Queue ``job(*args)`` now, or at ``at``, under :func:`job_id` of ``id_parts``;
    False when that job is already queued.

    RQ keeps a job's id taken while its result is kept (an hour) or its failure (30
    days). ``requeue_finished``: a job with this id that has already run does not count
    as queued, so a step whose earlier run could not act (its clinic was disconnected)
    can be queued again.
    """
    full_id = qualified(job_id(job, *id_parts))
    options = {"job_id": full_id, "unique": unique, **job_options()}
    options["job_timeout"] = options.pop("timeout")
    try:
        if at is not None and at > datetime.now(timezone.utc):
            queue().enqueue_at(at, job, *args, **options)
        else:
            queue_for(job).enqueue(job, *args, **options)
    except DuplicateJobError:
        if requeue_finished and _forget_if_done(full_id):
            return enqueue(job, *args, id_parts=id_parts, at=at, unique=unique)
        log.debug("queue.duplicate-job", extra={"job_id": full_id})
        return False
    return True


def qualified(job_id: str) -> str:
    """``job_id`` as Redis knows it: behind this database's installation id, so a
    database set up afresh on a Redis that still holds an earlier one's finished jobs
    (kept an hour, failures 30 days) is never refused its own ``send-1``."""
    return f"{installation_id()}-{job_id}"


def _forget_if_done(job_id: str) -> bool:
    """Delete the job ``job_id`` if it has run (finished, failed, stopped, cancelled)."""
    try:
        job = Job.fetch(job_id, connection=connection())
    except NoSuchJobError:
        return True
    if job.get_status(refresh=False) not in DONE:
        return False
    job.delete()
    return True
