"""Fixtures: a real Redis, a real SMTP server, a real HTTP callback receiver, SQLite
(and PostgreSQL when it answers), and Rapport's app configured against them."""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))

from servers import CallbackReceiver, SMTPServer  # noqa: E402

from handlers import generic  # noqa: E402
from plugin.tasks.embedded_redis import EmbeddedRedis  # noqa: E402

REDIS_URL = os.environ.get("RAPPORT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
POSTGRES_URL = os.environ.get(
    "RAPPORT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if _answers(REDIS_URL):
        yield REDIS_URL
        return
    # No Redis at the configured URL: run a throwaway real server for this session.
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    print(f"\nNo Redis at {REDIS_URL}; started a throwaway server at {server.start()}")
    yield server.url
    server.stop()


@pytest.fixture
def redis_conn(redis_url):
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture(scope="session")
def smtp_server():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server):
    smtp_server.mailbox.clear()
    yield smtp_server.mailbox
    smtp_server.mailbox.clear()


@pytest.fixture(scope="session")
def receiver_server():
    server = CallbackReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def receiver(receiver_server):
    receiver_server.clear()
    yield receiver_server
    receiver_server.clear()


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it cannot be used."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    try:
        engine = create_engine(
            POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"),
            connect_args={"connect_timeout": 2},
        )
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - any failure means "not available"
        return f"PostgreSQL does not answer at {POSTGRES_URL}: {error.__class__.__name__}"
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each storage test runs on SQLite and on PostgreSQL (skipped, with the reason,
    when no PostgreSQL answers)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rapport.db'}"
        return
    reason = postgres_available()
    if reason:
        print(f"\nSkipping the PostgreSQL run: {reason}")
        pytest.skip(reason)
    schema = f"rapport_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def make_config(tmp_path: Path, redis_url: str, smtp_port: int, **extra) -> dict:
    return {
        "ENV": "development",  # loopback callbacks (ALLOW_PRIVATE_CALLBACKS)
        "SECRET_KEY": "test-secret-key-0123456789abcdef",
        "BASE_URL": "http://rapport.test",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'rapport.db'}",
        "REDIS_URL": redis_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_port,
        "MAIL_FROM": "Harbour Massage <checkin@harbour.example>",
        "JOB_RETRY_INTERVALS": [1, 1, 1],
        "WRITE_BACK_BACKOFF_SECONDS": 1,
        **extra,
    }


@pytest.fixture
def app_factory(tmp_path, redis_conn, redis_url, smtp_server):
    from plugin import create_app

    apps = []

    def build(**extra):
        app = create_app(make_config(tmp_path, redis_url, smtp_server.port, **extra))
        apps.append(app)
        return app

    yield build
    from plugin.web import inbox

    for app in apps:
        # Events a test left being queued land in this test's Redis, not the next one's.
        inbox.inbox(app).flush()
        app.extensions["rapport.engine"].dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


ALWAYS_OPEN = {"send_delay_minutes": 0, "window_start": "00:00", "window_end": "24:00"}
# Square derives completion from the end time: no grace either, so a visit that ended
# in the past is checked at once (time moved by configuration, not by sleeping).
SQUARE_AT_ONCE = {**ALWAYS_OPEN, "completion_grace_minutes": 0}


@pytest.fixture
def clinic_factory(app, receiver):
    from plugin.clinics import records as clinics
    from plugin.store import database as storage
    from tests.support import installs

    def build(*, timing: dict | None = None, callback_url: str | None = None, **settings):
        with app.app_context(), storage.session() as db:
            created = clinics.create(
                db,
                name="Harbour Massage",
                platform="generic",
                timezone="Europe/London",
                credentials=installs.manual_credentials(
                    "generic", callback_url=callback_url or receiver.url
                ),
                settings={"timing": {**ALWAYS_OPEN, **(timing or {})}, **settings},
            )
            return installs.describe(created)

    return build


@pytest.fixture
def clinic(clinic_factory):
    """A generic clinic whose rules send at once, at any hour."""
    return clinic_factory()


def event_body(
    event_type: str = "appointment.completed",
    *,
    appointment_id: str = "A-100",
    client_id: str = "C-7",
    email: str = "sam@example.com",
    end: datetime | None = None,
    first_name: str = "Sam",
    locale: str = "en",
    therapist=("T-2", "Dana"),
    occurred_at: datetime | None = None,
) -> bytes:
    end = end or datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    occurred_at = occurred_at or datetime.now(timezone.utc)
    return json.dumps(
        {
            "type": event_type,
            "timestamp": occurred_at.isoformat(),
            "data": {
                "appointment": {
                    "id": appointment_id,
                    "start": (end - timedelta(hours=1)).isoformat(),
                    "end": end.isoformat(),
                    "service": "Deep tissue 60",
                },
                "client": {
                    "id": client_id,
                    "email": email,
                    "first_name": first_name,
                    "locale": locale,
                },
                "therapist": {"id": therapist[0], "name": therapist[1]} if therapist else None,
            },
        }
    ).encode()


def signed(body: bytes, clinic: dict, msg_id: str | None = None, **kwargs) -> dict:
    return generic.sign(
        body, secret=clinic["webhook_secret"], msg_id=msg_id or f"msg_{uuid.uuid4().hex}", **kwargs
    )


def webhook_path(clinic: dict) -> str:
    return f"/webhooks/generic/{clinic['key']}"


@pytest.fixture
def deliver(client, clinic):
    """POST a signed generic webhook to the app; returns the response."""

    def send(
        event_type: str = "appointment.completed",
        *,
        msg_id: str | None = None,
        to: dict | None = None,
        **fields,
    ):
        target = to or clinic
        body = event_body(event_type, **fields)
        return client.post(webhook_path(target), data=body, headers=signed(body, target, msg_id))

    return send


def drainer(app):
    """Runs every due job of ``app`` in this process (a real RQ worker, no fork)."""
    from plugin.tasks import worker

    def run(wait_for_scheduled: float = 0):
        with app.app_context():
            worker.drain(forking=False, wait_for_scheduled=wait_for_scheduled)

    return run


@pytest.fixture
def drain(app):
    return drainer(app)


def subprocess_env(app, **extra) -> dict[str, str]:
    """The environment that configures a Rapport subprocess like ``app``."""
    names = ("ENV", "SECRET_KEY", "BASE_URL", "DATABASE_URL", "REDIS_URL", "SMTP_HOST",
             "SMTP_PORT", "MAIL_FROM", "JOB_RETRY_INTERVALS", "WRITE_BACK_BACKOFF_SECONDS")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    for name in names:
        value = app.config[name]
        env[f"RAPPORT_{name}"] = value if isinstance(value, str) else json.dumps(value)
    env["RAPPORT_INSTANCE_PATH"] = app.instance_path
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env.update({f"RAPPORT_{k}": str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def square_sandbox():
    """A local Square (tests/sandboxes/square.py) that checks requests against its spec."""
    from tests.sandboxes.square import SquareSandbox

    with SquareSandbox() as sandbox:
        yield sandbox


def serving_square(app_factory, square_sandbox, **config):
    """Rapport on a real socket (Square delivers to it and redirects to it), talking to
    the Square sandbox; yields the app and its URL."""
    from servers import LiveServer

    holder = {}
    live = LiveServer(lambda environ, start: holder["app"](environ, start))
    app = app_factory(BASE_URL=live.url, SQUARE_ENVIRONMENT="sandbox",
                      SQUARE_BASE_URL=square_sandbox.base_url,
                      SQUARE_APPLICATION_ID=square_sandbox.application_id,
                      SQUARE_APPLICATION_SECRET=square_sandbox.application_secret,
                      SQUARE_ACCESS_TOKEN=square_sandbox.personal_access_token, **config)
    holder["app"] = app
    yield app, live.url
    live.stop()


@pytest.fixture
def square_app(app_factory, square_sandbox):
    yield from serving_square(app_factory, square_sandbox)


@pytest.fixture
def square_drain(square_app):
    """Run due jobs with the Square-facing app's settings."""
    return drainer(square_app[0])


def answer_last_check_in(app, mailbox, value=None, comment: str = ""):
    """The client answers the latest check-in email (every item meaning ``value``)."""
    from sqlalchemy import select
    from survey_client import answer, answers_for, survey_path

    from plugin.pipeline import instruments
    from plugin.store import database as storage
    from plugin.store.models import CheckIn

    with app.app_context(), storage.session() as db:
        instrument = instruments.get(db.scalars(
            select(CheckIn.instrument_id).order_by(CheckIn.id.desc())).first())
    return answer(app.test_client(), survey_path(mailbox.messages[-1]),
                  answers_for(instrument, value), comment)
