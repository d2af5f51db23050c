"""Jobs run inside an application context: the current one, or one built once per
worker process by the factory the application registered (``plugin.create_app``)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, has_app_context

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


def app_context():
    if has_app_context():
        return contextlib.nullcontext()
    return _process_app().app_context()


def job(function: F) -> F:
    """Mark ``function`` as an RQ job: it runs with an application context."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        with app_context():
            return function(*args, **kwargs)

    return run  # type: ignore[return-value]
