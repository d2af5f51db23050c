"""What Rapport counts for Prometheus: events received, check-ins, write-backs, jobs.

The counters are incremented where the thing happens (the receiver, the sending and
write-back jobs, the survey, the ``@job`` wrapper) and read by ``GET /metrics``
(:mod:`plugin.web.metrics`), which adds the queues' depth read from Redis at scrape
time. Under gunicorn and the workers, every process counts on its own: with
``PROMETHEUS_MULTIPROC_DIR`` set (the same folder for gunicorn and the workers of one
host, before they start), prometheus_client keeps each process's counts in a file there
and ``/metrics`` adds them up. docs/operations.md has the set-up.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "rapport_events_received", "Webhook deliveries received, by platform and the HTTP "
    "status Rapport answered (202 stored, 200 duplicate or ignored, 4xx refused)",
    ["platform", "answer"])
CHECK_INS = Counter(
    "rapport_check_ins", "Check-ins by what happened: sent, reminded, answered, expired, "
    "failed (not sent), interrupted (the worker stopped while sending)", ["event"])
WRITE_BACKS = Counter(
    "rapport_write_backs", "Write-back attempts by outcome: delivered, retry, failed, paused",
    ["outcome"])
JOB_SECONDS = Histogram(
    "rapport_job_duration_seconds", "How long each job ran, by job and whether it raised",
    ["job", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


_PID = re.compile(r"_(\d+)\.db$")


def clean_directory(directory: str | None = None) -> int:
    """Remove the files of processes that are no longer running, as prometheus_client
    asks at start-up (run by gunicorn's master as it starts, see
    ``plugin/web/gunicorn_config.py``); how many. The files of running processes (the
    workers, which share the folder) are left alone."""
    directory = directory or multiprocess_dir()
    if not directory:
        return 0
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    removed = 0
    for file in path.glob("*.db"):
        found = _PID.search(file.name)
        if found and not _running(int(found.group(1))):
            file.unlink(missing_ok=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
