"""What the end-to-end flows against a platform's stand-in share: Rapport on a real socket
(the stand-in delivers to it over HTTP), the ``rapport`` command as an admin types it,
against the same database and Redis, and time moved for jobs waiting to run later.

Time is moved, never waited for: a job scheduled for later (a retry honouring
``Retry-After``, a completion check at a visit's end) is made due now, after its delay has
been read (:func:`due_now`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select

from plugin.cli import main
from plugin.store import database as storage
from plugin.store.models import Appointment, CheckIn, Clinic, InboxEvent, WriteBack
from plugin.tasks import queue
from tests.support.servers import LiveServer

ALWAYS_AT_ONCE = {"send_delay_minutes": 0, "window_start": "00:00", "window_end": "24:00",
                  "completion_grace_minutes": 0}
# What the command needs to reach the same installation as the test's app.
SHARED_SETTINGS = ("ENV", "SECRET_KEY", "BASE_URL", "DATABASE_URL", "REDIS_URL", "SMTP_HOST",
                   "SMTP_PORT", "MAIL_FROM", "JOB_RETRY_INTERVALS",
                   "WRITE_BACK_BACKOFF_SECONDS")


def serving(app_factory: Callable, base_url: str | None = None,
            **config: Any) -> Iterator[tuple[Any, str]]:
    """Rapport on a real socket: the app and the socket's URL. ``base_url``: the URL
    Rapport says it is at (a stand-in may route it to the socket), else the socket's."""
    holder: dict[str, Any] = {}
    live = LiveServer(lambda environ, start: holder["app"](environ, start))
    app = app_factory(BASE_URL=base_url or live.url, **config)
    holder["app"] = app
    try:
        yield app, live.url
    finally:
        live.stop()


def rapport_command(app, settings: dict[str, Any]) -> Callable[..., Result]:
    """``rapport …`` run as an admin would, configured like ``app`` plus the platform's
    ``settings`` (configuration names without the prefix, e.g. ``MINDBODY_API_KEY``)."""
    env = {f"RAPPORT_{name}": _text(app.config[name]) for name in SHARED_SETTINGS}
    env["RAPPORT_INSTANCE_PATH"] = app.instance_path
    env.update({f"RAPPORT_{name}": _text(value) for name, value in settings.items()})
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def added(result: Result) -> dict[str, Any]:
    """What ``rapport clinic add … --json`` printed."""
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def due_now(app) -> list[float]:
    """Make every job scheduled for later due now; how many seconds ahead each one was."""
    moment = datetime.now(UTC)
    ahead = []
    with app.app_context():
        registry = queue.queue().scheduled_job_registry
        for job_id in registry.get_job_ids():
            ahead.append(registry.get_scheduled_time(job_id).timestamp() - moment.timestamp())
            registry.schedule(queue.queue().fetch_job(job_id), moment)
    return ahead


def rows(app, model, *where) -> list:
    with app.app_context(), storage.session() as db:
        return list(db.scalars(select(model).where(*where).order_by(model.id)))


def clinic(app, key: str) -> Clinic:
    (found,) = rows(app, Clinic, Clinic.key == key)
    return found


def check_ins(app) -> list[CheckIn]:
    return rows(app, CheckIn)


def appointments(app) -> list[Appointment]:
    return rows(app, Appointment)


def inbox(app) -> list[InboxEvent]:
    return rows(app, InboxEvent)


def write_backs(app) -> list[WriteBack]:
    return rows(app, WriteBack)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
