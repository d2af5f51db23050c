"""``GET /metrics``: Rapport's counters in Prometheus's text format, for whoever holds
the metrics token.

Off (404) until ``RAPPORT_METRICS_TOKEN`` is set; then the scraper sends it as a bearer
token (``Authorization: Bearer <token>``, Prometheus's ``authorization`` setting), and
anything else is answered 401. The counters are :mod:`plugin.metrics`'s, added up over
every process when ``PROMETHEUS_MULTIPROC_DIR`` is set; the depth of each queue is read
from Redis as the page is asked for.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisError

from plugin.metrics import multiprocess_dir
from plugin.tasks import queue

bp = Blueprint("metrics", __name__)


class QueueDepth:
    """``rapport_queue_jobs{queue, state}``: jobs waiting (queued), waiting for their
    time (scheduled, retries included), running (started) and failed, per queue."""

    def collect(self):
        family = GaugeMetricFamily(
            "rapport_queue_jobs", "Jobs in each of Rapport's queues, by state",
            labels=["queue", "state"])
        connection = queue.connection()
        found = []
        with connection.pipeline(transaction=False) as pipe:
            for q in queue.queues():
                registries = {"scheduled": q.scheduled_job_registry,
                              "started": q.started_job_registry,
                              "failed": q.failed_job_registry}
                pipe.llen(q.key)
                found.append((q.name, "queued"))
                for state, registry in registries.items():
                    # Counted as they stand: the registries' own count() would also
                    # clean them up, which is a worker's business, not a scrape's.
                    pipe.zcard(registry.key)
                    found.append((q.name, state))
            counts = pipe.execute()
        for (name, state), count in zip(found, counts, strict=True):
            family.add_metric([name, state], count)
        yield family


def _authorized() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@bp.get("/metrics")
def metrics():
    if not _authorized():
        return Response("a metrics token is needed (Authorization: Bearer …)\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="rapport-metrics"'},
                        mimetype="text/plain")
    if multiprocess_dir():
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    live = CollectorRegistry()
    live.register(QueueDepth())
    try:
        queues = generate_latest(live)
    except RedisError:
        queues = b"# the queues could not be read: Redis did not answer\n"
    body = generate_latest(counted) + queues
    return Response(body, 200, {"Cache-Control": "no-store"}, content_type=CONTENT_TYPE_LATEST)
