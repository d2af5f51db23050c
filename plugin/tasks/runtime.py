"""Jobs run inside an application context: the current one, or one built once per
worker process by the factory the application registered (``plugin.create_app``)."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, has_app_context

from plugin.metrics import JOB_SECONDS

F = TypeVar("F", bound=Callable)
_factory: Callable[[], Flask] | None = None
_app: Flask | None = None


def use_factory(factory: Callable[[], Flask]) -> None:
    """How a process that has no application builds one (from ``RAPPORT_*``)."""
    global _factory
    _factory = factory


def _process_app() -> Flask:
    global _app
    if _app is None:
        if _factory is None:
            raise RuntimeError("no application factory registered: import plugin first")
        _app = _factory()
    return _app


def known_apps() -> list[Flask]:
    """The applications this process holds: the current one, and its own."""
    apps = [current_app._get_current_object()] if has_app_context() else []
    return apps + [_app] if _app is not None and _app not in apps else apps


def app_context():
    if has_app_context():
        return contextlib.nullcontext()
    return _process_app().app_context()


def job(function: F) -> F:
    """Mark ``function`` as an RQ job: it runs with an application context."""

    timed = JOB_SECONDS.labels(function.__name__, "ok")
    failed = JOB_SECONDS.labels(function.__name__, "raised")

    @functools.wraps(function)
    def run(*args, **kwargs):
        started = time.perf_counter()
        try:
            with app_context():
                result = function(*args, **kwargs)
        except BaseException:
            failed.observe(time.perf_counter() - started)
            raise
        timed.observe(time.perf_counter() - started)
        return result

    return run  # type: ignore[return-value]


def sends(function: F) -> F:
    """Mark a job (above ``@job``) as one of the many that email clients: a check-in, its
    reminder, its expiry. They are queued apart, behind everything else
    (:func:`plugin.tasks.queue.queue_for`), so that a backlog of them never holds up a
    write-back, an event or the sweeper."""
    function.sends = True  # type: ignore[attr-defined]
    return function
