"""The ``rapport`` command: clinics, the worker, the demo, the database."""

from __future__ import annotations

import json
import logging
import sys

import click
from flask import Flask

from plugin.config import ConfigurationError
from plugin.redis_server import RedisUnavailable
from questionnaires.cli import DIRS_KEY


def app_or_exit() -> Flask:
    """The application, or a plain error naming the setting to fix."""
    from plugin import create_app

    try:
        return create_app()
    except (ConfigurationError, RedisUnavailable) as error:
        raise click.ClickException(str(error))


@click.group()
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
    from plugin import create_app, storage

    try:
        app = create_app({"AUTO_MIGRATE": False})
    except (ConfigurationError, RedisUnavailable) as error:
        raise click.ClickException(str(error))
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
