"""Jobs run inside an application context: the current one, or one built from the
environment (``RAPPORT_*``) once per worker process."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, has_app_context

_app: Flask | None = None
F = TypeVar("F", bound=Callable)


def _process_app() -> Flask:
    global _app
    if _app is None:
        from plugin import create_app

        _app = create_app()
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
