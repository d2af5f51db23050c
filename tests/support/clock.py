"""Time moved, not waited for: RQ keeps jobs queued for later (retries, backoff, a
send waiting for its hour) in its scheduled registry, a sorted set scored by the moment
each is due. Rewriting a score makes that moment now."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from flask import Flask

from plugin.pipeline import sweeper
from plugin.tasks import queue, worker


def scheduled(app: Flask) -> dict[str, float]:
    """The jobs waiting in RQ's scheduled registries (both queues'): id → seconds until
    due."""
    with app.app_context():
        now = time.time()
        return {job_id.decode(): score - now
                for registry in (each.scheduled_job_registry for each in queue.queues())
                for job_id, score in registry.connection.zrange(
                    registry.key, 0, -1, withscores=True)}


def bring_due(app: Flask, within: float) -> int:
    """Make every job scheduled to run within ``within`` seconds from now due at once, as
    if that time had passed; how many were moved."""
    moved = 0
    with app.app_context():
        for registry in (each.scheduled_job_registry for each in queue.queues()):
            now = time.time()
            due_soon = registry.connection.zrangebyscore(registry.key, "-inf", now + within)
            if due_soon:
                registry.connection.zadd(registry.key, {job_id: now - 1 for job_id in due_soon})
            moved += len(due_soon)
    return moved


def drain(app: Flask, within: float = 0) -> None:
    """Run ``app``'s due jobs in this process (a real RQ worker, no fork) until none are
    left; with ``within``, also those scheduled to run within that many seconds of when
    each round starts (retries and their backoff), moved due instead of waited for."""
    for _ in range(100):  # every job's retries are bounded; so is this
        with app.app_context():
            worker.drain(forking=False)
        if not within or not bring_due(app, within):
            return
    raise AssertionError("jobs kept scheduling themselves again: a retry loop?")


def sweep_in(app: Flask, **later) -> dict:
    """The sweeper's run that far from now (``minutes=10``): time moved by its argument."""
    with app.app_context():
        return sweeper.sweep(now=datetime.now(timezone.utc) + timedelta(**later))


def drainer(app: Flask):
    """``drain`` for ``app``, to call later: what a test's ``drain`` fixture gives."""

    def run(within: float = 0) -> None:
        drain(app, within)

    return run
