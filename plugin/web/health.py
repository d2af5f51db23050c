"""``/healthz``: is this Rapport installation healthy? For load balancers and operators.

Anyone gets ``{"ok": true}`` (200) or ``{"ok": false}`` (503): enough for a load
balancer, and nothing about the installation. With the ``HEALTH_TOKEN`` setting, a
request carrying it (``X-Health-Token`` header, or ``?token=``) also gets the detail:
whether the database and Redis answer, how many jobs wait, which licensed instrument
files were skipped. Only reads: it never takes the database's write lock.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from plugin.pipeline import instruments
from plugin.store import database
from plugin.tasks import queue

bp = Blueprint("health", __name__)


def check() -> dict:
    """Whether the database and Redis answer, how much work is waiting, and which
    licensed instrument files were skipped as broken."""
    report: dict = {"ok": True}
    try:
        with database.reading() as db:
            db.execute(text("SELECT 1"))
        report["database"] = "ok"
    except SQLAlchemyError as error:
        report.update(ok=False, database=f"unavailable: {error.__class__.__name__}")
    try:
        queue.connection().ping()
        report["redis"] = "ok"
        report["queued_jobs"] = sum(waiting.count for waiting in queue.queues())
    except RedisError as error:
        report.update(ok=False, redis=f"unavailable: {error.__class__.__name__}")
    # A broken instrument file is skipped and its clinics fall back to the shipped
    # questionnaire: Rapport still serves, so this is for the admin, not the balancer.
    report["instrument_files_skipped"] = instruments.problems()
    return report


def _may_see_detail() -> bool:
    expected = current_app.config["HEALTH_TOKEN"]
    given = request.headers.get("X-Health-Token") or request.args.get("token") or ""
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


@bp.get("/healthz")
def healthz():
    report = check()
    answer = report if _may_see_detail() else {"ok": report["ok"]}
    return jsonify(answer), 200 if report["ok"] else 503
