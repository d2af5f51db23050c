"""The database: one engine per app, short sessions, migrations run under a lock.

On SQLite, a session that may write takes the write lock when it begins (``BEGIN
IMMEDIATE``), so that concurrent writers queue instead of failing. What only reads —
every request anyone can send without credentials: a survey page, ``/healthz``, finding
a webhook's clinic before its signature is checked — runs in :func:`reading`, which
takes no lock and so can never make a writer wait.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from plugin.store.identity import installation_id

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
# Set while a block only reads: its SQLite transactions begin without the write lock.
_READ_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("rapport_read_only",
                                                                 default=False)
# Per thread: how many sessions are open, and what waits for the last one to end.
_open = threading.local()


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["rapport.engine"] = engine
    app.extensions["rapport.sessions"] = sessionmaker(engine, expire_on_commit=False)
    if app.config["AUTO_MIGRATE"]:
        migrate(engine)
        # Known before any fork, so that worker and job processes inherit it.
        installation_id(app)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # No ping before each use: it would double the webhook path's round trips. A
    # connection broken by a database restart fails one request, which the platform
    # retries (nothing was acknowledged), and is then replaced.
    return create_engine(url, pool_recycle=3600, pool_size=10)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Transactions are begun explicitly (below), so pysqlite must not begin its own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection) -> None:
    # Taking the write lock at BEGIN makes concurrent writers wait for each other
    # instead of failing on lock upgrade, the way PostgreSQL's row locks would. A block
    # that only reads takes no lock (reading()).
    connection.connection.driver_connection.execute(
        "BEGIN" if _READ_ONLY.get() else "BEGIN IMMEDIATE")


def engine() -> Engine:
    return current_app.extensions["rapport.engine"]


@contextlib.contextmanager
def session() -> Iterator[Session]:
    """A session whose transaction commits when the block ends without error."""
    depth = getattr(_open, "depth", 0)
    _open.depth = depth + 1
    try:
        with current_app.extensions["rapport.sessions"].begin() as db:
            yield db
    finally:
        _open.depth = depth
        if depth == 0:
            for action in _open.__dict__.pop("waiting", []):
                action()


def outside_transactions(action: Callable[[], None]) -> None:
    """Run ``action`` (a small write of its own) now, or, while this thread has a session
    open, as soon as the last one ends: the open transaction may hold a lock the write
    would wait on forever (SQLite's write lock, taken at BEGIN; a row the write's foreign
    key points to). ``action`` handles its own errors."""
    if getattr(_open, "depth", 0):
        _open.__dict__.setdefault("waiting", []).append(action)
        return
    action()


@contextlib.contextmanager
def read_only() -> Iterator[None]:
    """Within this block, transactions begin without SQLite's write lock (for reads
    through the engine, such as ``engine().connect()``)."""
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


@contextlib.contextmanager
def reading() -> Iterator[Session]:
    """A session for a block that only reads: no write lock is taken, nothing is
    committed (its transaction is rolled back at the end). What it loaded stays readable
    after the block, detached, as a committed session's objects do."""
    with read_only(), current_app.extensions["rapport.sessions"]() as db:
        try:
            yield db
        finally:
            db.expunge_all()
            db.rollback()


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision; safe when several processes start at once."""
    config = alembic_config(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(727270)"))
            try:
                command.upgrade(config, "head")
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(727270)"))
                connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        command.upgrade(config, "head")
        return
    with open(f"{database}.migrate-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        command.upgrade(config, "head")
