"""RQ on Redis: the connection, the queue and how jobs are enqueued.

Job ids are derived from the rows they work on, so the same step is never queued
twice at once; every job is idempotent, so a step that does run twice is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import redis
from flask import Flask, current_app
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from plugin.redis_server import EmbeddedRedis

log = logging.getLogger(__name__)

JOB_TIMEOUT = 120


def init_app(app: Flask) -> None:
    url = app.config["REDIS_URL"]
    if not url:
        url = EmbeddedRedis(Path(app.instance_path) / "redis").start()
        app.config["REDIS_URL"] = url
    app.extensions["rapport.redis"] = redis.Redis.from_url(url)


def connection() -> redis.Redis:
    return current_app.extensions["rapport.redis"]


def queue() -> Queue:
    return Queue(current_app.config["QUEUE_NAME"], connection=connection())


def job_options() -> dict:
    """Timeouts, retention and retries every Rapport job gets."""
    intervals = list(current_app.config["JOB_RETRY_INTERVALS"])
    return {"timeout": JOB_TIMEOUT, "result_ttl": 3600, "failure_ttl": 30 * 86400,
            "retry": Retry(max=len(intervals), interval=intervals)}


def retry_later(retry_after: float | None = None) -> Retry:
    """What a job returns to be run again: after ``retry_after`` when the platform said,
    else after the first configured interval."""
    intervals = list(current_app.config["JOB_RETRY_INTERVALS"])
    return Retry(max=len(intervals), interval=[int(retry_after or intervals[0])])


def enqueue(function: str, *args, job_id: str, at: datetime | None = None,
            unique: bool = True) -> bool:
    """Queue ``function(*args)`` now, or at ``at``; False when that job is already queued."""
    options = {"job_id": job_id, "unique": unique, **job_options()}
    options["job_timeout"] = options.pop("timeout")
    try:
        if at is not None and at > datetime.now(timezone.utc):
            queue().enqueue_at(at, function, *args, **options)
        else:
            queue().enqueue(function, *args, **options)
    except DuplicateJobError:
        log.debug("queue.duplicate-job", extra={"job_id": job_id})
        return False
    return True
