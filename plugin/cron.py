"""Rapport's periodic jobs, for RQ's cron scheduler.

In production run ``rq cron plugin.cron`` beside the workers (one is enough; two do
no harm, the sweeper being idempotent). ``rapport worker`` runs the same schedule in a
child process of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from rq import cron

from plugin.config import read_settings
from plugin.jobs import refresh_tokens, sweep


def schedule(register: Callable, *, queue_name: str, sweep_interval: int) -> None:
    register(sweep, queue_name=queue_name, interval=sweep_interval)
    register(refresh_tokens, queue_name=queue_name, cron="17 3 * * *")


# The settings as every other Rapport process reads them: rapport.cfg, then RAPPORT_*.
_settings = read_settings()
schedule(cron.register, queue_name=_settings["QUEUE_NAME"],
         sweep_interval=int(_settings["SWEEP_INTERVAL_SECONDS"]))
