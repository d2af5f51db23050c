"""What goes wrong in the fault matrix's scenarios (tests/support/fault_scenarios.py):
each fault has hooks the run calls before the first delivery, once every visit is
acknowledged, once every client has answered, and at the end, which undoes the fault
and says what was done. ``strength`` scales it: 1 for CI, 10 for ``bench/faults.py``."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

from tests.support.fault_stack import Stack


class Fault:
    """No fault: the hooks do nothing. Each fault below overrides those it needs."""

    def __init__(self, strength: int = 1) -> None:
        self.strength = strength
        self.threads: list[threading.Thread] = []
        self.failures: list[BaseException] = []
        self.stopping = threading.Event()

    def before(self, stack: Stack) -> None: ...
    def delivered(self, stack: Stack) -> None: ...
    def answered(self, stack: Stack) -> None: ...

    def end(self, stack: Stack) -> str:
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        if self.failures:  # a fault that could not be applied proves nothing
            raise RuntimeError(f"the fault failed: {self.failures[0]!r}") from self.failures[0]
        return self.said(stack)

    def said(self, stack: Stack) -> str:
        return "none"

    def beside(self, work: Callable[[], None]) -> None:
        """Run ``work`` in a thread of its own, after the one before it has ended."""
        earlier = list(self.threads)

        def after_earlier() -> None:
            for thread in earlier:
                thread.join()
            try:
                work()
            except BaseException as error:  # noqa: BLE001 - said by end()
                self.failures.append(error)

        thread = threading.Thread(target=after_earlier, daemon=True)
        thread.start()
        self.threads.append(thread)


class WorkerKilled(Fault):
    """A worker SIGKILLed with all it runs (its horse, its cron) every 0.8 s, alternately,
    4 × strength times, while mail and callbacks are slow (a quarter second each): kills
    land mid-send and mid-write-back. Each worker is started again, as by a supervisor."""

    kills = 0

    def before(self, stack: Stack) -> None:
        stack.sink.delay = stack.callbacks.delay = 0.25
        self.beside(lambda: self._kill(stack))

    def _kill(self, stack: Stack) -> None:
        while self.kills < 4 * self.strength and not self.stopping.wait(0.8):
            stack.workers.kill(self.kills % stack.worker_count)
            self.kills += 1

    def said(self, stack: Stack) -> str:
        stack.sink.delay = stack.callbacks.delay = 0
        return f"{self.kills} workers SIGKILLed, mid-send and mid-write-back"


class RedisRestarted(Fault):
    """Redis restarted empty (no persistence) with sends queued, and again with
    write-backs queued: every queued job and schedule gone."""

    restarts = 0

    def before(self, stack: Stack) -> None:
        stack.sink.delay = stack.callbacks.delay = 0.3

    def delivered(self, stack: Stack) -> None:
        self._restart(stack)

    def answered(self, stack: Stack) -> None:
        self._restart(stack)

    def _restart(self, stack: Stack) -> None:
        stack.restart_redis_empty()
        self.restarts += 1

    def said(self, stack: Stack) -> str:
        stack.sink.delay = stack.callbacks.delay = 0
        return f"Redis restarted empty {self.restarts}×, jobs queued"


class SmtpDown(Fault):
    """The mail server refuses connections for 6 s × strength (a minute at 10)."""

    def before(self, stack: Stack) -> None:
        stack.smtp_down()
        self.beside(lambda: (self.stopping.wait(6 * self.strength), stack.smtp_up()))

    def said(self, stack: Stack) -> str:
        return f"SMTP down {6 * self.strength} s"


class CallbackStorm(Fault):
    """Every write-back answered 503, then 429 (``Retry-After: 1``), 3 s × strength each."""

    def delivered(self, stack: Stack) -> None:
        def storm() -> None:
            for status in (503, 429):
                stack.callbacks.refusing = status
                self.stopping.wait(3 * self.strength)
            stack.callbacks.refusing = None

        self.beside(storm)

    def said(self, stack: Stack) -> str:
        return f"{stack.callbacks.refused} callbacks refused (503, then 429)"


class DatabaseLocked(Fault):
    """The database locked from outside for 2 s × strength while the webhooks arrive, and
    again while check-ins go out and clients answer (SQLite: an exclusive transaction;
    PostgreSQL: the tables locked)."""

    held = 0

    def before(self, stack: Stack) -> None:
        self.beside(lambda: self._hold(stack))

    def delivered(self, stack: Stack) -> None:
        self.beside(lambda: self._hold(stack))

    def _hold(self, stack: Stack) -> None:
        with _locked(stack):
            time.sleep(2 * self.strength)
        self.held += 1

    def said(self, stack: Stack) -> str:
        return f"database locked {2 * self.strength} s, {self.held}×"


@contextlib.contextmanager
def _locked(stack: Stack) -> Iterator[None]:
    if stack.postgres is None:
        connection = sqlite3.connect(stack.database_url.removeprefix("sqlite:///"),
                                     isolation_level=None, timeout=30)
        connection.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    import psycopg

    with psycopg.connect(stack.database_url) as connection:
        connection.execute("LOCK TABLE inbox_events, check_ins, write_backs "
                           "IN ACCESS EXCLUSIVE MODE")
        yield


class DatabaseRestarted(Fault):
    """PostgreSQL restarted (fast: every connection cut) as the webhooks arrive, once they
    are in, and once the clients have answered."""

    restarts = 0

    def before(self, stack: Stack) -> None:
        self.beside(lambda: (time.sleep(0.3), self._restart(stack)))

    def delivered(self, stack: Stack) -> None:
        self.beside(lambda: self._restart(stack))

    def answered(self, stack: Stack) -> None:
        self.beside(lambda: self._restart(stack))

    def _restart(self, stack: Stack) -> None:
        stack.postgres.restart()
        self.restarts += 1

    def said(self, stack: Stack) -> str:
        return f"PostgreSQL restarted {self.restarts}×"
