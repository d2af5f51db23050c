"""``rapport worker``, ``sweep``, ``db upgrade`` and ``demo``: running Rapport."""

from __future__ import annotations

import json
import logging
import sys

import click

import handlers
from plugin import create_app
from plugin.cli.base import app_or_exit
from plugin.demo import SIMULATED, run_demo
from plugin.pipeline import sweeper
from plugin.store import database
from plugin.tasks import worker as runner


@click.command()
@click.option("--burst", is_flag=True, help="Run what is due, then exit.")
def worker(burst):
    """Run the jobs (with RQ's scheduler, and the sweeper every minute)."""
    app = app_or_exit()
    with app.app_context():
        logging.getLogger().setLevel(logging.INFO)
        if burst:
            sweeper.sweep()
            runner.drain()
        else:
            runner.run(create_app)


@click.command()
def sweep():
    """Re-queue anything stored but not processed, and drop data past its retention."""
    app = app_or_exit()
    with app.app_context():
        click.echo(json.dumps(sweeper.sweep()))


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade():
    """Migrate the database to the latest schema."""
    app = app_or_exit({"AUTO_MIGRATE": False})
    database.migrate(app.extensions["rapport.engine"])
    click.echo("Database is at the latest schema.")


@click.command()
@click.option("--once", is_flag=True, help="Run one loop and exit (for CI).")
@click.option("--port", default=5000, show_default=True, help="Port for Rapport's pages.")
@click.option("--platform", default=SIMULATED, show_default=True,
              help="The booking system: a simulated one speaking the generic platform, or a "
              "platform's local stand-in from a source checkout's tests/sandboxes "
              f"({', '.join(p for p in handlers.PLATFORMS if p != SIMULATED)}).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve the demo's pages on: 0.0.0.0 lets a phone on the same "
              "network open the check-in (its links then use this machine's address).")
def demo(once, port, platform, host):
    """The whole loop on this machine: booking → email → answers → note."""
    sys.exit(run_demo(once=once, port=port, platform=platform, host=host))
