"""What every ``rapport`` command shares: building the application, and errors an
admin can fix said in a line or two naming the setting to change, never as a traceback
(a missing setting, Redis or the database not answering, an unknown clinic)."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import click
import redis
from flask import Flask
from sqlalchemy.exc import OperationalError

from plugin import config, create_app
from plugin.clinics import records
from plugin.config import ConfigurationError
from plugin.store.models import Clinic
from plugin.tasks.embedded_redis import RedisUnavailable

APP_KEY = "rapport.app"


def app_or_exit(overrides: dict | None = None) -> Flask:
    """The application, or a plain error naming the setting to fix."""
    try:
        app = create_app(overrides)
    except (ConfigurationError, RedisUnavailable) as error:
        raise click.ClickException(str(error))
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[APP_KEY] = app  # its URLs, should Redis or the database not answer
    return app


class RapportGroup(click.Group):
    """The command's boundary: Redis or the database out of reach is a plain error."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise click.ClickException(unreachable(ctx, "Redis", "REDIS_URL", error))
        except OperationalError as error:
            raise click.ClickException(
                unreachable(ctx, "the database", "DATABASE_URL", error.orig or error))


def unreachable(ctx: click.Context, what: str, setting: str, error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    reason = lines[0].strip() if lines else error.__class__.__name__
    return (f"could not reach {what} at {masked(_configured(ctx, setting))}: {reason}\n"
            f"Check that it is running and answers at that address, or set "
            f"RAPPORT_{setting} to one that does.")


def _configured(ctx: click.Context, setting: str) -> str:
    """The URL the command used: its application's, or the one the settings give when
    the application could not even be built (a migration that found no database)."""
    app = ctx.meta.get(APP_KEY)
    if app is None:
        app = config.bare_app()
        with contextlib.suppress(ConfigurationError):  # DATABASE_URL is filled in first
            config.load_config(app)
    return str(app.config.get(setting) or "(not set)")


def masked(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in its authority or its query).

    Edited in place rather than rebuilt: ``urlunsplit`` drops the empty authority of
    ``sqlite:///…`` and ``unix:///…``."""
    parts = urlsplit(url)
    if parts.password is not None:
        user = parts.netloc.rpartition("@")[0].partition(":")[0]
        host = parts.netloc.rpartition("@")[2]
        url = url.replace(f"//{parts.netloc}", f"//{user}:***@{host}", 1)
    base, mark, query = url.partition("?")
    if "password=" in query:
        query = "&".join(f"{pair.partition('=')[0]}=***"
                         if pair.partition("=")[0] == "password" else pair
                         for pair in query.split("&"))
    return base + mark + query


def clinic_or_exit(db, key: str) -> Clinic:
    found = records.by_key(db, key)
    if found is None:
        raise click.ClickException(f"no clinic with key {key!r}; `rapport clinic list` shows them")
    return found
