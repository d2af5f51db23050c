"""``/healthz``: is this Rapport installation healthy? For load balancers and operators."""

from __future__ import annotations

from flask import Blueprint, jsonify
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
        with database.session() as db:
            db.execute(text("SELECT 1"))
        report["database"] = "ok"
    except SQLAlchemyError as error:
        report.update(ok=False, database=f"unavailable: {error.__class__.__name__}")
    try:
        queue.connection().ping()
        report["redis"] = "ok"
        report["queued_jobs"] = queue.queue().count
    except RedisError as error:
        report.update(ok=False, redis=f"unavailable: {error.__class__.__name__}")
    # A broken instrument file is skipped and its clinics fall back to the shipped
    # questionnaire: Rapport still serves, so this is for the admin, not the balancer.
    report["instrument_files_skipped"] = instruments.problems()
    return report



@bp.get("/healthz")
def healthz():
    report = check()
    return jsonify(report), 200 if report["ok"] else 503
