"""Settings module for RQ's command line:
``rq worker-pool rapport -c plugin.tasks.rq_settings``.

RQ forks a work horse for every job, and a horse imports the job's module if its parent
has not: for Rapport that is over a second of imports (Flask, SQLAlchemy, Alembic, the
adapters), paid again by every job. Loading this module in the worker itself, before it
forks, imports the application and every job once, so each horse starts with them. It
sets no RQ setting.
"""

import plugin  # noqa: F401 - the application factory, and through it every job
from plugin.clinics import platforms  # noqa: F401
from plugin.pipeline import (  # noqa: F401
    appointments,
    booking_notes,
    ingest,
    polling,
    sending,
    sweeper,
    write_back,
)
