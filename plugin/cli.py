"""The ``rapport`` command: clinics, the worker, the demo, the database.

Errors an admin can fix are said in a line or two naming the setting to change, never
as a traceback: a missing setting, Redis or the database not answering.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from urllib.parse import urlsplit

import click
import redis
from flask import Flask
from sqlalchemy.exc import OperationalError

from plugin.config import ConfigurationError
from plugin.redis_server import RedisUnavailable
from questionnaires.cli import DIRS_KEY

APP_KEY = "rapport.app"


def app_or_exit(overrides: dict | None = None) -> Flask:
    """The application, or a plain error naming the setting to fix."""
    from plugin import create_app

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
    from plugin import config

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


@click.group(cls=RapportGroup)
@click.option("--verbose", "-v", is_flag=True, help="Log every step, not only warnings.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Rapport: therapeutic-alliance check-ins for massage and bodywork clinics."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # `rapport questionnaires …` reads the folder the server reads, rapport.cfg included.
    ctx.meta[DIRS_KEY] = questionnaire_dirs


def questionnaire_dirs() -> list:
    from plugin import config, instruments

    return instruments.directories(config.read_settings().get("QUESTIONNAIRES_DIR"))


@main.command()
@click.option("--burst", is_flag=True, help="Run what is due, then exit.")
def worker(burst):
    """Run the jobs (with RQ's scheduler, and the sweeper every minute)."""
    from plugin import sweeper
    from plugin import worker as runner

    app = app_or_exit()
    with app.app_context():
        logging.getLogger().setLevel(logging.INFO)
        if burst:
            sweeper.sweep()
            runner.drain()
        else:
            runner.run()


@main.command()
def sweep():
    """Re-queue anything stored but not processed, and drop data past its retention."""
    from plugin import sweeper

    app = app_or_exit()
    with app.app_context():
        click.echo(json.dumps(sweeper.sweep()))


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade():
    """Migrate the database to the latest schema."""
    from plugin import storage

    app = app_or_exit({"AUTO_MIGRATE": False})
    storage.migrate(app.extensions["rapport.engine"])
    click.echo("Database is at the latest schema.")


@main.command()
@click.option("--once", is_flag=True, help="Run one loop and exit (for CI).")
@click.option("--port", default=5000, show_default=True, help="Port for Rapport's pages.")
def demo(once, port):
    """The whole loop on this machine: booking → email → answers → note."""
    from plugin.demo import run_demo

    sys.exit(run_demo(once=once, port=port))


def _mount_groups() -> None:
    from plugin.cli_clinic import clinic
    from questionnaires.cli import questionnaires

    main.add_command(clinic)
    main.add_command(questionnaires)


_mount_groups()
