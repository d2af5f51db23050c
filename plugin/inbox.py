"""The inbox: verified webhook events, stored before they are acknowledged.

Writes are grouped: each web process has one writer thread that takes every event
waiting at that moment, inserts them in one transaction (one commit, one fsync), hands
each request its row id, and queues the new events as one ``ingest_events`` job. A
request answers 202 only once its event is committed, so an acknowledged event is
never lost; under load the commit and the job are shared by many events, which is
what lets one process keep up with a platform's bursts (see bench/ingest.py). Should
queuing fail, the stored events wait for the sweeper.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue as stdlib_queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from plugin.models import InboxEvent

log = logging.getLogger(__name__)

COLUMNS = ("clinic_id", "delivery_id", "received_at", "body", "headers", "attempts")
BATCH = 200
LINGER_SECONDS = 0.002
WAIT_SECONDS = 10


class InboxUnavailable(RuntimeError):
    """The event could not be stored; the request must not be acknowledged."""


@dataclass
class _Pending:
    values: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    inbox_id: int | None = None
    error: BaseException | None = None


class InsertStatement:
    """The insert compiled once for this database, run on a plain DBAPI cursor with the
    bind processors SQLAlchemy would apply (its full execution path costs more than the
    insert itself at webhook rates)."""

    def __init__(self, engine: Engine):
        dialect = engine.dialect
        module = postgresql if dialect.name == "postgresql" else sqlite
        compiled = (module.insert(InboxEvent)
                    .values({name: None for name in COLUMNS})
                    .on_conflict_do_nothing(index_elements=["clinic_id", "delivery_id"])
                    .returning(InboxEvent.id)).compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = compiled.positiontup  # None for named parameter styles
        table = InboxEvent.__table__
        self.processors = {name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                           for name in COLUMNS}
        # SQLite runs with the driver's own transactions off (plugin.storage).
        self.begin = "BEGIN IMMEDIATE" if dialect.name == "sqlite" else None

    def params(self, values: dict[str, Any]):
        processed = {name: (processor(values[name]) if processor else values[name])
                     for name, processor in self.processors.items()}
        return processed if self.positional is None else [processed[n] for n in self.positional]


class Inbox:
    def __init__(self, app: Flask, engine: Engine):
        self.app = app
        self.engine = engine
        self.statement = InsertStatement(engine)
        self.lock = threading.Lock()
        self.started_in_pid: int | None = None
        self.pending: stdlib_queue.SimpleQueue[_Pending] = stdlib_queue.SimpleQueue()
        self.busy = threading.Condition()
        self.unfinished = 0

    def store(self, *, clinic_id: int, delivery_id: str, body: bytes,
              headers: dict[str, Any]) -> int | None:
        """Commit the event; its inbox id, or None when the clinic had this delivery."""
        if self.started_in_pid != os.getpid():  # first use, or first use after a fork
            self._start()
        item = _Pending({"clinic_id": clinic_id, "delivery_id": delivery_id,
                         "received_at": datetime.now(timezone.utc), "body": body,
                         "headers": headers, "attempts": 0})
        with self.busy:
            self.unfinished += 1
        self.pending.put(item)
        if not item.done.wait(WAIT_SECONDS):
            raise InboxUnavailable(f"the database did not commit within {WAIT_SECONDS} s")
        if item.error is not None:
            raise InboxUnavailable(str(item.error)) from item.error
        return item.inbox_id

    def flush(self, timeout: float = 10) -> bool:
        """Wait until every stored event has been handed to the queue."""
        with self.busy:
            return self.busy.wait_for(lambda: self.unfinished == 0, timeout)

    def _start(self) -> None:
        with self.lock:
            if self.started_in_pid == os.getpid():
                return
            self.pending = stdlib_queue.SimpleQueue()
            self.unfinished = 0
            threading.Thread(target=self._run, name="rapport-inbox", daemon=True).start()
            atexit.register(self.flush, 5)
            self.started_in_pid = os.getpid()

    def _run(self) -> None:
        while True:
            batch = [self.pending.get()]
            # Linger a moment for the events arriving alongside: a slightly later commit
            # shared by many costs far less than many commits and jobs of one each.
            deadline = time.monotonic() + LINGER_SECONDS
            while len(batch) < BATCH:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self.pending.get(timeout=remaining) if remaining > 0
                                 else self.pending.get_nowait())
                except stdlib_queue.Empty:
                    break
            try:
                self._write(batch)
                self._queue([item.inbox_id for item in batch if item.inbox_id is not None])
            except BaseException as error:  # noqa: BLE001 - the writer thread must not die
                log.exception("inbox.writer-failed: %s", error)
            finally:
                for item in batch:
                    item.done.set()
                with self.busy:
                    self.unfinished -= len(batch)
                    self.busy.notify_all()

    def _write(self, batch: list[_Pending]) -> None:
        try:
            self._transaction(batch)
        except Exception:
            if len(batch) == 1:
                batch[0].error = batch[0].error or InboxUnavailable("the insert failed")
                raise
            # One bad event must not fail the others: store them one by one.
            for item in batch:
                try:
                    self._transaction([item])
                except Exception as error:  # noqa: BLE001
                    item.error = error

    def _transaction(self, batch: list[_Pending]) -> None:
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            if self.statement.begin:
                cursor.execute(self.statement.begin)
            ids = []
            for item in batch:
                cursor.execute(self.statement.sql, self.statement.params(item.values))
                row = cursor.fetchone()
                ids.append(row[0] if row else None)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()  # back to the pool
        for item, inbox_id in zip(batch, ids, strict=True):
            item.inbox_id = inbox_id

    def _queue(self, inbox_ids: list[int]) -> None:
        if not inbox_ids:
            return
        from plugin.queue import enqueue

        try:
            with self.app.app_context():
                enqueue("plugin.jobs.ingest_events", inbox_ids, job_id=f"ingest-{inbox_ids[0]}")
        except (RedisError, OSError) as error:
            log.error("inbox.enqueue-failed: %d events wait for the sweeper: %s",
                      len(inbox_ids), error)


def init_app(app: Flask) -> None:
    app.extensions["rapport.inbox"] = Inbox(app, app.extensions["rapport.engine"])


def inbox(app: Flask) -> Inbox:
    return app.extensions["rapport.inbox"]
