"""The ``rapport`` command: clinics, the worker, the demo, the database, the
questionnaires. This module assembles the command groups; nothing imports it back."""

from __future__ import annotations

import logging

import click

from plugin.cli import (
    admin,
    clinic_connect,
    clinic_data,
    clinic_health,
    clinic_poll,
    clinic_rules,
    operations,
)
from plugin.cli.base import RapportGroup
from plugin.config import read_settings
from plugin.pipeline import instruments
from questionnaires.cli import DIRS_KEY, questionnaires


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
    return instruments.directories(read_settings().get("QUESTIONNAIRES_DIR"))


@click.group()
def clinic() -> None:
    """Connect clinics, tune their rules, send a test, see whether they are healthy."""


for command in (clinic_connect.add, clinic_health.list_clinics, clinic_rules.configure,
                clinic_connect.rotate_secret, *clinic_connect.credential_commands(),
                clinic_health.retry_write_backs, clinic_data.erase_client,
                clinic_data.send_test, clinic_poll.poll):
    clinic.add_command(command)

for command in (operations.worker, operations.sweep, operations.db, operations.demo, clinic,
                questionnaires):
    main.add_command(command)
main.add_command(admin.admin)
