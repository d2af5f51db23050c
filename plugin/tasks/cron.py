"""Rapport's periodic jobs for RQ's cron scheduler: ``rq cron plugin.tasks.cron``.

Run it in production beside the workers (one is enough; two do no harm, the sweeper
being idempotent). ``rapport worker`` runs the same schedule in a child process of its
own. Importing this module registers the schedule, with the settings every other
Rapport process reads: rapport.cfg, then RAPPORT_*.
"""

from __future__ import annotations

from rq import cron

from plugin.config import read_settings
from plugin.tasks.schedule import schedule

_settings = read_settings()
schedule(cron.register, queue_name=_settings["QUEUE_NAME"],
         sweep_interval=int(_settings["SWEEP_INTERVAL_SECONDS"]))
