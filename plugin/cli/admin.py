"""``rapport admin``: who may sign in to the console.

``invite EMAIL --clinic KEY`` (or ``--operator``, who sees every clinic) emails a
single-use sign-in link; ``list`` shows every admin; ``remove EMAIL`` removes one and
ends their sessions at once."""

from __future__ import annotations

import json

import click

from plugin.cli.base import app_or_exit
from plugin.clinics import admins
from plugin.pipeline import mail


@click.group("admin")
def admin() -> None:
    """Invite, list and remove the people who sign in to the console."""


@admin.command("invite")
@click.argument("email")
@click.option("--clinic", "clinic_key", help="The clinic they look after (its key).")
@click.option("--operator", is_flag=True, help="Sees every clinic, instead of one.")
@click.option("--print-link", is_flag=True,
              help="Also print the sign-in link (when no mail server is set up yet).")
def invite(email, clinic_key, operator, print_link):
    """Make EMAIL an admin and email them a sign-in link (again, for one already)."""
    app = app_or_exit()
    with app.app_context():
        try:
            invited = admins.invite(email, clinic_key=clinic_key, operator=operator)
        except admins.AdminError as error:
            raise click.ClickException(str(error))
        except mail.MailError as error:
            raise click.ClickException(
                f"{email} is an admin now, but the invitation was not sent: {error}. Fix "
                f"the mail settings (RAPPORT_SMTP_*), then run this command again.")
    where = f"{invited.clinic_name}'s" if invited.clinic_name else "every clinic's (operator)"
    click.echo(f"Invited {invited.email} to {where} console; the sign-in link is in their "
               "email.")
    if print_link:
        click.echo(invited.url)


@admin.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_admins(as_json):
    """Every admin, with their clinic and when they last signed in."""
    app = app_or_exit()
    with app.app_context():
        rows = admins.listing()
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("No admins yet. Invite one with: rapport admin invite EMAIL --clinic KEY")
    for row in rows:
        where = "operator (every clinic)" if row["operator"] else \
            f"{row['clinic_name']} ({row['clinic']})"
        seen = row["last_sign_in_at"].strftime("%Y-%m-%d %H:%M UTC") \
            if row["last_sign_in_at"] else "never signed in"
        click.echo(f"{row['email']}  {where}  {seen}")


@admin.command("remove")
@click.argument("email")
def remove(email):
    """Remove an admin: their sessions end and their links stop working at once."""
    app = app_or_exit()
    with app.app_context():
        try:
            ended = admins.remove(email)
        except admins.AdminError as error:
            raise click.ClickException(str(error))
    click.echo(f"Removed {email.strip().lower()}; {ended} session(s) ended.")
