"""Settings module for RQ's command line:
``rq worker-pool rapport rapport-sends -c plugin.tasks.rq_settings``.

A worker forks its work horse (``plugin.tasks.horse``), and a horse imports a job's
module if its parent has not: for Rapport that is over a second of imports (Flask,
SQLAlchemy, Alembic, the adapters). Loading this module in the worker itself, before it
forks, imports the application and every job once, so each horse starts with them; and
starts Sentry's RQ integration there when ``RAPPORT_SENTRY_DSN`` is set. It sets no RQ
setting.
"""

import plugin  # noqa: F401 - the application factory, and through it every job
from plugin import sentry
from plugin.clinics import platforms  # noqa: F401
from plugin.config import read_settings
from plugin.pipeline import (  # noqa: F401
    appointments,
    booking_notes,
    ingest,
    polling,
    sending,
    sweeper,
    write_back,
)

sentry.init(read_settings())
