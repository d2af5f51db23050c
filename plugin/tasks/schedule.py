"""Rapport's periodic jobs, and how often each runs."""

from __future__ import annotations

from collections.abc import Callable

from plugin.clinics.alerts import alert_admins
from plugin.clinics.platforms import refresh_tokens
from plugin.pipeline.polling import poll_due
from plugin.pipeline.sweeper import sweep

# How often the polled clinics that are due are looked for (RAPPORT_POLL_INTERVAL_SECONDS
# is at least this; a poll that left more waiting queues the next one itself).
POLL_CHECK_SECONDS = 60


def schedule(register: Callable, *, queue_name: str, sweep_interval: int) -> None:
    """Register each periodic job with ``register`` (RQ's cron registry, or a
    ``CronScheduler``'s)."""
    register(sweep, queue_name=queue_name, interval=sweep_interval)
    register(refresh_tokens, queue_name=queue_name, cron="17 3 * * *")
    register(poll_due, queue_name=queue_name, interval=POLL_CHECK_SECONDS)
    # Each clinic's admins hear at most once a day per kind (plugin.clinics.alerts).
    register(alert_admins, queue_name=queue_name, cron="7 * * * *")
