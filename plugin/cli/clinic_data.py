"""``rapport clinic send-test`` and ``erase-client``: an admin's own check-in, and a
client forgotten on request."""

from __future__ import annotations

import click
from marshmallow import ValidationError, validate

from plugin.cli.base import app_or_exit, clinic_or_exit
from plugin.pipeline import erasure, sending
from plugin.store import database


@click.command("erase-client")
@click.argument("key")
@click.argument("client_id")
def erase_client(key, client_id):
    """Erase what Rapport keeps about one client, on their request.

    CLIENT_ID is the client's id in the booking platform (Square: the customer id).
    Answers, comments, scores, check-ins, links, appointments and the webhook events
    naming the client are deleted. An opt-out stays, so no check-in goes out again.
    Rapport's note in the booking platform is yours to remove there.
    """
    app = app_or_exit()
    with app.app_context(), database.session() as db:
        clinic_id = clinic_or_exit(db, key).id
        counts = erasure.erase_client(db, clinic_id, client_id)
    click.echo(f"Erased client {client_id!r}: {counts['responses']} answer(s), "
               f"{counts['check_ins']} check-in(s), {counts['appointments']} appointment(s), "
               f"{counts['event_bodies']} webhook event(s).")
    if counts["opted_out"]:
        click.echo("Their opt-out is kept (the platform's client id only), so no check-in "
                   "goes out again.")
    if counts["events_pending"]:
        click.echo(f"{counts['events_pending']} of those webhook event(s) had not been "
                   "processed yet; the client's part of them never will be.")
    if counts["jobs"]:
        click.echo(f"{counts['jobs']} finished or failed job(s) about the client were "
                   "deleted from the queue.")
    click.echo("Remove Rapport's note from the client's profile in the booking platform "
               "yourself.")


@click.command("send-test")
@click.argument("key")
@click.option("--to", "email", required=True, help="Your own email address.")
def send_test(key, email):
    """Email yourself a real check-in; its answers show the note, nothing is written back."""
    try:
        validate.Email()(email)
    except ValidationError:
        raise click.BadParameter(f"{email!r} is not an email address; give your own, "
                                 "e.g. --to you@clinic.example", param_hint="--to")
    app = app_or_exit()
    with app.app_context():
        with database.session() as db:
            clinic_id = clinic_or_exit(db, key).id
        check_in = sending.send_test(clinic_id, email)
    if check_in.status == "sent":
        click.echo(f"Test check-in sent to {email}. Open it on your phone: the thank-you page "
                   "shows the note your therapists would read.")
    else:
        raise click.ClickException(f"the test was not sent: {check_in.reason}")
