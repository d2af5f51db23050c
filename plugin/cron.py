"""Rapport's periodic jobs, for RQ's cron scheduler.

In production run ``rq cron plugin.cron`` beside the workers (one is enough; two do
no harm, the sweeper being idempotent). ``rapport worker`` runs the same schedule in a
child process of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from rq import cron

from plugin.jobs import refresh_tokens, sweep


def schedule(register: Callable, *, queue_name: str, sweep_interval: int) -> None:
    register(sweep, queue_name=queue_name, interval=sweep_interval)
    register(refresh_tokens, queue_name=queue_name, cron="17 3 * * *")


schedule(cron.register, queue_name=os.environ.get("RAPPORT_QUEUE_NAME", "rapport"),
         sweep_interval=int(os.environ.get("RAPPORT_SWEEP_INTERVAL_SECONDS", "60")))
