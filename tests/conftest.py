"""Fixtures: a real Redis, a real SMTP server, a real HTTP callback receiver, SQLite
(and PostgreSQL when it answers), and Rapport's app configured against them.

The helpers behind them live in ``tests.support``; the names say what each is:
``web`` is Flask's test client, ``generic_clinic`` a clinic on the generic platform,
``callback_receiver`` the HTTP server a generic clinic's answers are posted to."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import redis
from sqlalchemy import create_engine, text

from plugin.tasks.embedded_redis import EmbeddedRedis
from tests.support import clock, console, databases
from tests.support import square as square_support
from tests.support.generic import add_generic_clinic, event_body, sign_generic, webhook_path
from tests.support.rapport import TEMPLATES, make_config
from tests.support.servers import CallbackReceiver, SMTPServer
from tests.support.square import (
    NOW,
    THERAPIST_NOTE,
    add_manual_clinic,
    add_oauth_clinic,
    add_square_clinic,
    serving_square,
)

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
    """The configured test Redis database; under pytest-xdist (``-n 2``) each worker runs
    a private Redis server instead, so that no two workers ever share one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker and _answers(REDIS_URL):
        yield REDIS_URL
        return
    # A throwaway real server for this session (or this worker).
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    url = server.start()
    if not worker:
        print(f"\nNo Redis at {REDIS_URL}; started a throwaway server at {url}")
    yield url
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
def callback_server():
    server = CallbackReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def callback_receiver(callback_server):
    """The HTTP server a generic clinic's answers are posted to, emptied for this test."""
    callback_server.clear()
    yield callback_server
    callback_server.clear()


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it cannot be used."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    try:
        engine = create_engine(
            databases.psycopg(POSTGRES_URL), connect_args={"connect_timeout": 2},
        )
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - any failure means "not available"
        return f"PostgreSQL does not answer at {POSTGRES_URL}: {error.__class__.__name__}"
    return None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A SQLite database migrated once for the session; each test gets a copy."""
    return databases.sqlite_template(tmp_path_factory.mktemp("schema"))


@pytest.fixture(scope="session")
def postgres_schemas():
    reason = postgres_available()
    if reason:
        print(f"\nSkipping the PostgreSQL runs: {reason}")
        pytest.skip(reason)
    schemas = databases.PostgresSchemas(POSTGRES_URL)
    yield schemas
    schemas.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, sqlite_template):
    """Each storage test runs on SQLite and on PostgreSQL (skipped, with the reason,
    when no PostgreSQL answers): an empty database at the latest revision."""
    if request.param == "sqlite":
        return databases.sqlite_copy(sqlite_template, tmp_path / "rapport.db")
    return request.getfixturevalue("postgres_schemas").emptied()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request, tmp_path):
    """A database with nothing in it, not even the schema: for the migrations' tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    schemas = request.getfixturevalue("postgres_schemas")
    url = schemas.fresh()
    yield url
    schemas.drop(url)


@pytest.fixture
def app_factory(tmp_path, redis_conn, redis_url, smtp_server, sqlite_template):
    """Builds Rapport apps on this test's Redis, SMTP server and database (a copy of the
    session's migrated SQLite file, unless ``DATABASE_URL`` says otherwise)."""
    from plugin import create_app

    apps = []

    def build(**extra):
        config = make_config(tmp_path, redis_url, smtp_server.port, **extra)
        database = tmp_path / "rapport.db"
        if config["DATABASE_URL"] == f"sqlite:///{database}":
            if not database.exists():
                databases.sqlite_copy(sqlite_template, database)
            # At the latest revision already: checking costs Alembic a read of every
            # migration file, for every app of every test.
            config.setdefault("AUTO_MIGRATE", False)
        app = create_app(config)
        app.jinja_env.bytecode_cache = TEMPLATES
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
def web(app):
    """Flask's test client for ``app``."""
    return app.test_client()


@pytest.fixture
def generic_clinic_factory(app, callback_receiver):
    """Adds a generic clinic to ``app`` whose answers go to ``callback_receiver``:
    ``generic_clinic_factory(timing={...}, callback_url=...)``."""

    def build(*, timing: dict | None = None, callback_url: str | None = None, **settings):
        return add_generic_clinic(app, callback_url=callback_url or callback_receiver.url,
                                  timing=timing, **settings)

    return build


@pytest.fixture
def generic_clinic(generic_clinic_factory):
    """A generic clinic whose rules send at once, at any hour."""
    return generic_clinic_factory()


@pytest.fixture
def deliver_generic(web, generic_clinic):
    """POST a signed generic webhook to the app; returns the response."""

    def send(
        event_type: str = "appointment.completed",
        *,
        msg_id: str | None = None,
        to: dict | None = None,
        **fields,
    ):
        target = to or generic_clinic
        body = event_body(event_type, **fields)
        return web.post(webhook_path(target), data=body,
                        headers=sign_generic(body, target, msg_id))

    return send


@pytest.fixture
def drain(app):
    """Runs ``app``'s due jobs in this process: ``drain(within=15)`` also runs those
    scheduled within 15 s (retries), moving them due instead of waiting."""
    return lambda within=0: clock.drain(app, within)


@pytest.fixture
def square_sandbox():
    """A local Square (tests/sandboxes/square.py) that checks requests against its spec."""
    from tests.sandboxes.square import SquareSandbox

    with SquareSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def square_app(app_factory, square_sandbox):
    """Rapport on a real socket facing the Square sandbox: ``(app, its URL)``. The Connect
    link needs someone signed in to the console: ``tests.support.square.connect`` opens it
    as an operator."""
    for app, url in serving_square(app_factory, square_sandbox):
        square_support.BROWSER["session"] = console.browser_session(app, url)
        yield app, url
        square_support.BROWSER.clear()


@pytest.fixture
def square_clinic(square_app, square_sandbox):
    """A Square clinic in manual mode: its own subscription, key and notification URL
    (``{"url": …}``, where Square delivers its events)."""
    return add_square_clinic(square_app, square_sandbox)


@pytest.fixture
def square_oauth_clinic(square_app):
    """A Square clinic added to connect through Square's sign-in: not connected yet."""
    return add_oauth_clinic(square_app[0])


@pytest.fixture
def square_manual_clinic(square_app, square_sandbox):
    """A Square clinic set up by hand (its own subscription's key and URL): what the
    admin copies."""
    return add_manual_clinic(square_app, square_sandbox)


@pytest.fixture
def square_visit(square_sandbox):
    """Sam's visit that ended half an hour ago: ``(customer, booking)`` in Square."""
    customer = square_sandbox.seed_customer(
        given_name="Sam", email_address="sam@example.com", note=THERAPIST_NOTE
    )
    booking = square_sandbox.seed_booking(
        customer_id=customer["id"], start_at=NOW - timedelta(minutes=90), duration_minutes=60
    )
    return customer, booking


@pytest.fixture
def square_drain(square_app):
    """Run due jobs with the Square-facing app's settings (``within`` as ``drain``)."""
    return lambda within=0: clock.drain(square_app[0], within)
