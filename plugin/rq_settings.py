"""Settings module for RQ's command line: ``rq worker-pool rapport -c plugin.rq_settings``.

RQ forks a work horse for every job, and a horse imports the job's module if its parent
has not: for Rapport that is over a second of imports (Flask, SQLAlchemy, Alembic, the
adapters), paid again by every job. Loading this module in the worker itself, before it
forks, imports the jobs once, so each horse starts with them. It sets no RQ setting.
"""

from plugin import jobs  # noqa: F401
