"""The inbox: verified webhook events, stored before they are acknowledged.

Each event is kept as a :class:`~plugin.web.deliveries.Entry` (what a poll stores, in
a transaction of its own, too: :func:`~plugin.web.deliveries.store_now`).

Writes are grouped: each web process has one writer thread that takes every event
waiting at that moment, inserts them in one transaction (one commit, one fsync) and
hands each request its row id. A request answers 202 only once its event is committed,
so an acknowledged event is never lost. A second thread then queues the committed
events together, at most ``QUEUE_LINGER_SECONDS`` later, as one ``ingest_events`` job:
queuing is off the request's path and off the writer's, and under load one commit and
one job are shared by many events, which is what lets one process keep up with a
platform's bursts (see bench/ingest.py). Should queuing fail, or the process die before
it, the stored events wait for the sweeper. On SQLite a third thread copies the
write-ahead log into the database file, so that no commit waits for that copy.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
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
from sqlalchemy.engine import Engine

from plugin.pipeline.ingest import queue_ingest
from plugin.store.models import InboxEvent
from plugin.web.deliveries import BATCH, COLUMNS, Entry

log = logging.getLogger(__name__)

QUEUE_LINGER_SECONDS = 0.05  # how long committed events wait to share one job
QUEUE_BATCH = 1000
WAIT_SECONDS = 10
CHECKPOINT_SECONDS = 0.05  # SQLite: how often the WAL is copied into the database


class InboxUnavailable(RuntimeError):
    """The event could not be stored; the request must not be acknowledged."""


def _next(source: stdlib_queue.SimpleQueue, until: float | None = None):
    """The next item in ``source``: one already there, or one arriving before the
    monotonic time ``until``; None when there is none."""
    remaining = 0.0 if until is None else until - time.monotonic()
    try:
        return source.get(timeout=remaining) if remaining > 0 else source.get_nowait()
    except stdlib_queue.Empty:
        return None


def _held_lock():
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class _Pending:
    key: tuple[int, str]  # (clinic_id, delivery_id)
    params: tuple  # the row, ready for the driver
    # Held until the writer has dealt with the event; a bare lock is the cheapest
    # one-shot signal between two threads.
    done: Any = field(default_factory=_held_lock)
    inbox_id: int | None = None
    error: BaseException | None = None


class InsertStatement:
    """One multi-row insert per batch, run on a plain DBAPI cursor with the bind
    processors SQLAlchemy would apply.

    One statement rather than one per event matters more than it looks: the driver lets
    go of the GIL around every call into the database, and under load getting it back
    costs the writer a wait behind the request threads each time. Rows a clinic already
    had are skipped by the unique index. On PostgreSQL the new rows' ids come back with
    RETURNING; on SQLite, whose driver would let go of the GIL again for every row
    returned, the statement is the whole transaction and the ids are read off the
    connection (``Inbox._sqlite_rows``).
    """

    def __init__(self, engine: Engine):
        dialect = engine.dialect
        table = InboxEvent.__table__
        placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        row = "(" + ", ".join([placeholder] * len(COLUMNS)) + ")"
        self.table = table.name
        # Only constant names go into the text; every value is a bound parameter.
        self.head = f"INSERT INTO {table.name} ({', '.join(COLUMNS)}) VALUES "  # noqa: S608
        self.row = row
        self.returning = dialect.name != "sqlite"
        self.tail = " ON CONFLICT (clinic_id, delivery_id) DO NOTHING"
        if self.returning:
            self.tail += " RETURNING id, clinic_id, delivery_id"
        self.processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                           for name in COLUMNS]
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        if rows not in self._sql:
            self._sql[rows] = self.head + ", ".join([self.row] * rows) + self.tail
        return self._sql[rows]

    def params(self, values: tuple) -> tuple:
        """The row's values as the driver takes them (run in the request's thread)."""
        return tuple(processor(value) if processor else value
                     for processor, value in zip(self.processors, values, strict=True))


class Inbox:
    def __init__(self, app: Flask, engine: Engine):
        self.app = app
        self.engine = engine
        self.statement = InsertStatement(engine)
        self.lock = threading.Lock()
        self.started_in_pid: int | None = None
        self.pending: stdlib_queue.SimpleQueue[_Pending] = stdlib_queue.SimpleQueue()
        # (stored inbox ids, requests answered) per batch, from the writer to the queuer
        self.committed: stdlib_queue.SimpleQueue[tuple[list[int], int]] = \
            stdlib_queue.SimpleQueue()
        self.busy = threading.Condition()
        self.unfinished = 0
        self.connection = None  # the writer thread's own, opened on first use
        self.turns = None  # on SQLite, the lock file the web processes' writers share
        self.written = threading.Event()  # set by the writer after each commit

    def store(self, *, clinic_id: int, entry: Entry) -> int | None:
        """Commit the event (its raw body and headers, and the events the adapter read in
        it); its inbox id, or None when the clinic had this delivery."""
        if self.started_in_pid != os.getpid():  # first use, or first use after a fork
            self._start()
        row = entry.row(clinic_id, datetime.now(timezone.utc))
        item = _Pending((clinic_id, entry.delivery_id), self.statement.params(row))
        self.pending.put(item)
        if not item.done.acquire(timeout=WAIT_SECONDS):
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
            self.committed = stdlib_queue.SimpleQueue()
            self.unfinished = 0
            self.connection = None  # never share a connection across a fork
            self.turns = None  # nor a lock file's description: flock would not tell them apart
            self.written = threading.Event()
            threading.Thread(target=self._write_batches, name="rapport-inbox-writer",
                             daemon=True).start()
            threading.Thread(target=self._queue_batches, name="rapport-inbox-queuer",
                             daemon=True).start()
            if self.engine.dialect.name == "sqlite":
                threading.Thread(target=self._checkpoint_wal, name="rapport-inbox-checkpointer",
                                 daemon=True).start()
            atexit.register(self.flush, 5)
            self.started_in_pid = os.getpid()

    def _write_batches(self) -> None:
        """The writer thread: commit what is waiting, release its requests, pass the
        stored ids on to the queuing thread. It does nothing else, so that the next
        batch never waits behind a conversation with Redis."""
        while True:
            batch = self._gather(self.pending.get())
            # Counted here rather than by each request: one lock a batch, and an event is
            # counted before its request can be answered, which is all flush() needs.
            with self.busy:
                self.unfinished += len(batch)
            self._commit(batch)
            self.written.set()
            self.committed.put(([item.inbox_id for item in batch if item.inbox_id is not None],
                                len(batch)))

    def _queue_batches(self) -> None:
        """The queuing thread: the ids committed within ``QUEUE_LINGER_SECONDS`` of each
        other share one job."""
        while True:
            inbox_ids, handled = self.committed.get()
            queue_by = time.monotonic() + QUEUE_LINGER_SECONDS
            while len(inbox_ids) < QUEUE_BATCH and (
                    more := _next(self.committed, until=queue_by)) is not None:
                inbox_ids += more[0]
                handled += more[1]
            try:
                self._queue(inbox_ids)
            except BaseException as error:  # noqa: BLE001 - the thread must not die
                log.exception("inbox.queue-failed: %s", error)
            with self.busy:
                self.unfinished -= handled
                self.busy.notify_all()

    def _checkpoint_wal(self) -> None:
        """On SQLite, the thread that copies the write-ahead log into the database.

        SQLite would have the writer do it, on the commit that finds the log past 1,000
        pages, and every request waiting on that commit would wait for the copy and its
        fsync too. The writer's connection leaves it to this thread, which does it at
        most once every ``CHECKPOINT_SECONDS`` after commits, without stopping the
        writer (PASSIVE).
        """
        connection = None
        while True:
            self.written.wait()
            self.written.clear()
            try:
                if connection is None:
                    connection = self.engine.raw_connection()
                connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as error:  # noqa: BLE001 - the thread must not die
                # Another process's checkpoint running is the usual reason; the next
                # round copies what this one did not.
                log.debug("inbox.checkpoint-skipped: %s", error)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.invalidate()
                    connection = None
            time.sleep(CHECKPOINT_SECONDS)

    def _gather(self, first: _Pending) -> list[_Pending]:
        """``first`` and every event already waiting. Nothing waits on purpose: while
        one commit runs, the events arriving meanwhile queue up and share the next."""
        batch = [first]
        while len(batch) < BATCH and (item := _next(self.pending)) is not None:
            batch.append(item)
        return batch

    def _commit(self, batch: list[_Pending]) -> None:
        """Store the batch and release its requests, whatever happened."""
        try:
            self._write(batch)
        except BaseException as error:  # noqa: BLE001 - the writer thread must not die
            log.exception("inbox.writer-failed: %s", error)
            for item in batch:
                if item.inbox_id is None and item.error is None:
                    item.error = error
        finally:
            for item in batch:
                item.done.release()

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
        connection = self._connection()
        try:
            with self.writers_turn():
                self._insert(connection, batch)
        except BaseException:
            self._discard(connection)
            raise

    def _insert(self, connection, batch: list[_Pending]) -> None:
        cursor = connection.cursor()
        cursor.execute(self.statement.sql(len(batch)),
                       [value for item in batch for value in item.params])
        if self.statement.returning:
            stored = {(clinic_id, delivery_id): inbox_id
                      for inbox_id, clinic_id, delivery_id in cursor.fetchall()}
        else:
            stored = self._sqlite_rows(cursor, batch)
        cursor.close()
        connection.commit()  # on SQLite the statement has committed itself
        for item in batch:
            # pop: the same delivery twice in one batch is stored once, then a duplicate.
            item.inbox_id = stored.pop(item.key, None)

    def _sqlite_rows(self, cursor, batch: list[_Pending]) -> dict[tuple[int, str], int]:
        """The rows one SQLite insert stored, by (clinic id, delivery id).

        SQLite gives each new row a rowid one larger than the largest in the table
        (https://www.sqlite.org/autoinc.html), row after row, and no other writer runs
        while this one holds the write lock: the statement's new rows are the last
        ``rowcount`` ids, in the order given. When every event was new they are the
        batch itself; otherwise one query says which events they were.
        """
        count, last = cursor.rowcount, cursor.lastrowid
        if count <= 0:
            return {}
        first = last - count + 1
        if count == len(batch):
            return {item.key: first + offset for offset, item in enumerate(batch)}
        cursor.execute(f"SELECT id, clinic_id, delivery_id FROM {self.statement.table}"  # noqa: S608
                       " WHERE id BETWEEN ? AND ?", (first, last))
        return {(clinic_id, delivery_id): inbox_id
                for inbox_id, clinic_id, delivery_id in cursor.fetchall()}

    @contextlib.contextmanager
    def writers_turn(self):
        """On SQLite, the web processes' writers take turns through a file lock.

        SQLite itself makes a writer that finds the database locked sleep and retry,
        for 1, 2, 5, … up to 100 ms at a time, so two processes committing every few
        milliseconds would keep making each other wait that long. A writer waiting on
        the file lock is woken the moment the other one is done.
        """
        if self.turns is None:
            yield
            return
        fcntl.flock(self.turns, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.turns, fcntl.LOCK_UN)

    def _connection(self):
        """The writer's own connection, kept between batches (a pool checkout and its
        reset cost as much as the insert). On SQLite its commits are fsynced
        (``synchronous=FULL``), so an acknowledged event survives a power cut too, and
        never copy the log into the database themselves (``_checkpoint_wal``)."""
        if self.connection is None:
            connection = self.engine.raw_connection()
            if self.engine.dialect.name == "sqlite":
                connection.driver_connection.execute("PRAGMA synchronous=FULL")
                connection.driver_connection.execute("PRAGMA wal_autocheckpoint=0")
                database = self.engine.url.database
                if database and database != ":memory:" and self.turns is None:
                    self.turns = open(f"{database}.inbox-lock", "a")  # noqa: SIM115
            self.connection = connection
        return self.connection

    def _discard(self, connection) -> None:
        """After a failure, start the next batch on a fresh connection."""
        self.connection = None
        with contextlib.suppress(Exception):  # the connection may be what broke
            connection.rollback()
        connection.invalidate()

    def _queue(self, inbox_ids: list[int]) -> None:
        if not inbox_ids:
            return
        try:
            with self.app.app_context():
                queue_ingest(inbox_ids)
        except (RedisError, OSError) as error:
            log.error("inbox.enqueue-failed: %d events wait for the sweeper: %s",
                      len(inbox_ids), error)


def init_app(app: Flask) -> None:
    app.extensions["rapport.inbox"] = Inbox(app, app.extensions["rapport.engine"])


def inbox(app: Flask) -> Inbox:
    return app.extensions["rapport.inbox"]
