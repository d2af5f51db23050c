"""gunicorn's hooks for Rapport: ``gunicorn -c python:plugin.web.gunicorn_config asgi:app``.

With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps each process's counts in
a file in that folder. As gunicorn starts, the files of processes that have ended (an
earlier run's) are removed; as each of its workers exits, its live values are dropped.
The workers' files (``rapport worker``, ``rq worker-pool``), whose processes still run,
are kept. Without the variable these hooks do nothing.
"""

from __future__ import annotations

from prometheus_client import multiprocess

from plugin import metrics


def on_starting(server) -> None:
    metrics.clean_directory()


def child_exit(server, worker) -> None:
    if metrics.multiprocess_dir():
        multiprocess.mark_process_dead(worker.pid)
