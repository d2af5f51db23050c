"""A work horse that runs job after job: RQ's guarantees without a fork per job.

RQ's ``Worker`` forks a process (a "work horse") for every job and watches it: a job
that outlives its timeout is stopped, one whose process dies (killed, out of memory, a
crash in C code) is failed or retried, and the worker carries on. The fork is what
costs: every job paid for a process's start, a fresh connection to the database and to
the mail server, and a copy of the parent's memory touched page by page (bench/scale.py
measured a send at 110 ms forked, 29 ms in one process).

:class:`WarmHorse` keeps RQ's worker and all it does around a job, and changes only
where the job runs: in one long-lived horse, forked once from the worker (whose imports
are done, and whose database connections are closed first so none crosses the fork),
and told each job's id through a pipe. The worker watches it exactly as RQ does: the
horse answers when the job has ended, and if it dies instead the worker finds out at
once (a pidfd, where Linux has one) and handles the job as RQ handles a dead horse;
the next job gets a new horse. A job that runs too long is stopped inside the horse by
RQ's own timeout, and the horse killed from outside 60 s after that, as before. A horse
retires after :attr:`WarmHorse.jobs_per_horse` jobs, so nothing a job leaves behind
accumulates for ever.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import random
import select
import time

from rq.executions import Execution
from rq.worker.base import logger as rq_logger

from plugin.tasks import runtime

log = logging.getLogger(__name__)

DONE = b"."
POLL_SECONDS = 1.0  # without a pidfd: how often a dead horse is looked for


class WarmHorse:
    """Mixin for ``rq.Worker``: one reusable work horse instead of one per job."""

    jobs_per_horse = 1000
    _warm_pid = 0
    _warm_jobs = 0
    _orders = _answers = _pidfd = -1
    _reaped: int | None = None

    # --- the worker's side ---------------------------------------------------------------

    def fork_work_horse(self, job, queue) -> None:  # RQ's name
        if not self._warm_pid:
            self._start_horse()
        order = json.dumps([job.id, queue.name, self.execution.id]).encode() + b"\n"
        try:
            os.write(self._orders, order)
        except OSError:  # the horse died while it waited (killed, out of memory): a new one
            self._horse_died()
            self._start_horse()
            os.write(self._orders, order)
        self._warm_jobs += 1
        self._horse_pid = self._warm_pid
        self.procline(f"Job {job.id} in horse {self._warm_pid} at {time.time()}")

    def wait_for_horse(self):  # RQ's name: (pid, wait status, rusage); status 0 is success
        """Until the horse says the job ended, or dies. RQ's monitor interrupts this with
        an alarm every ``job_monitoring_interval`` to keep the heartbeats going."""
        if not self._warm_pid:
            return None, None, None
        watched = select.poll()
        watched.register(self._answers, select.POLLIN)
        if self._pidfd >= 0:
            watched.register(self._pidfd, select.POLLIN)
        while True:
            ready = {fd for fd, _ in watched.poll(None if self._pidfd >= 0
                                                  else POLL_SECONDS * 1000)}
            if self._answers in ready:
                answer = os.read(self._answers, 1)
                if answer == DONE:
                    pid = self._warm_pid
                    if self._warm_jobs >= self.jobs_per_horse:
                        self._retire_horse()
                    return pid, 0, None
                return self._horse_died()  # the pipe closed: the horse is gone
            if self._pidfd in ready or self._pidfd < 0 and self._exited():
                return self._horse_died()

    def teardown(self) -> None:
        self._retire_horse()
        super().teardown()

    def _start_horse(self) -> None:
        self._release_connections()
        # What the worker built so far is shared with the horse and lives as long as
        # both: kept out of the collector's passes, which would otherwise write to (and so
        # copy) every page they walk.
        gc.collect()
        gc.freeze()
        orders_out, orders_in = os.pipe()
        answers_out, answers_in = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(orders_in)
            os.close(answers_out)
            try:
                self._run_horse(orders_out, answers_in, parent)
            except BaseException:  # noqa: BLE001 - said, then the worker handles the job
                log.exception("worker.horse-failed")
            finally:
                os._exit(1)
        os.close(orders_out)
        os.close(answers_in)
        self._warm_pid, self._warm_jobs = pid, 0
        self._orders, self._answers = orders_in, answers_out
        self._pidfd = -1
        with contextlib.suppress(AttributeError, OSError):  # Linux 5.3+
            self._pidfd = os.pidfd_open(pid)
        log.debug("worker.horse-started: %s", pid)

    def _exited(self) -> bool:
        try:
            pid, _status = os.waitpid(self._warm_pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid:
            self._reaped = _status
        return bool(pid)

    def _horse_died(self):
        pid = self._warm_pid
        status, rusage = self._reaped, None
        if status is None:
            try:
                pid, status, rusage = os.wait4(pid, 0)
            except ChildProcessError:
                status = None
        self._reaped = None
        self._close_pipes()
        return pid, status, rusage

    def _retire_horse(self) -> None:
        """Tell the horse to leave (its orders pipe closes), and wait for it."""
        if not self._warm_pid:
            return
        pid = self._warm_pid
        self._close_pipes()
        with contextlib.suppress(ChildProcessError):
            if self._reaped is None:
                os.waitpid(pid, 0)
        self._reaped = None

    def _close_pipes(self) -> None:
        for fd in (self._orders, self._answers, self._pidfd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._orders = self._answers = self._pidfd = -1
        self._warm_pid = self._horse_pid = 0

    @staticmethod
    def _release_connections() -> None:
        """Close the worker's database connections before forking: a connection must not
        be used on both sides of a fork, so the horse opens its own."""
        for app in runtime.known_apps():
            engine = app.extensions.get("rapport.engine")
            if engine is not None:
                engine.dispose()

    # --- the horse's side ----------------------------------------------------------------

    def _run_horse(self, orders: int, answers: int, parent: int) -> None:
        os.setpgrp()  # as RQ's horses: a signal to the worker's group is the worker's
        random.seed()
        self.setup_work_horse_signals()
        self._is_horse = True
        self.log = rq_logger
        with os.fdopen(orders, "rb", buffering=0) as pipe:
            while True:
                order = self._next_order(pipe, parent)
                if not order:
                    os._exit(0)
                job_id, queue_name, execution_id = json.loads(order)
                job = self.job_class.fetch(job_id, connection=self.connection,
                                           serializer=self.serializer)
                queue = self.queue_class(queue_name, connection=self.connection,
                                         job_class=self.job_class, serializer=self.serializer,
                                         death_penalty_class=self.death_penalty_class)
                execution = Execution.fetch(execution_id, job.id, connection=self.connection)
                execution._job = job
                self.execution = execution
                self.perform_job(job, queue, execution)
                os.write(answers, DONE)

    @staticmethod
    def _next_order(pipe, parent: int) -> bytes:
        """The next job's line, or b"" once the worker is gone or retires the horse."""
        line = b""
        watched = select.poll()  # not select.select: it fails on descriptors past 1023
        watched.register(pipe, select.POLLIN)
        while not line.endswith(b"\n"):
            if not watched.poll(POLL_SECONDS * 1000):
                if os.getppid() != parent:
                    return b""
                continue
            chunk = pipe.read(4096)
            if not chunk:
                return b""
            line += chunk
        return line
