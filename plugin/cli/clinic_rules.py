"""``rapport clinic configure``: a clinic's sending rules, instruments, flags, time zone
and language, its name, and who its check-in emails come from."""

from __future__ import annotations

import json

import click

from plugin.cli.base import app_or_exit, clinic_or_exit
from plugin.clinics import callbacks, records, settings
from plugin.pipeline import instruments, sending
from plugin.store import database

# The rules a waiting check-in's send time is computed from (with the time zone).
SEND_TIMING = frozenset({"send_delay_minutes", "window_start", "window_end"})


@click.command("configure")
@click.argument("key")
@click.option("--send-delay-minutes", type=int, help="After the visit ends (default 180).")
@click.option("--window", help="Sending window in the clinic's time zone, e.g. 09:00-20:00.")
@click.option("--reminder-after-hours", type=float, help="One reminder if unanswered (48).")
@click.option("--expire-after-days", type=float, help="The link closes after (7).")
@click.option("--quiet-days", type=int, help="No new check-in this long after an answer (14).")
@click.option("--grace-minutes", type=int,
              help="Platforms without a 'completed' status: wait this long after the end (15).")
@click.option("--instrument", help="One instrument for every visit, e.g. rapport-pulse.")
@click.option("--early-instrument", help="For a client's first visits with a therapist.")
@click.option("--early-visits", type=int, help="How many visits count as early (3).")
@click.option("--later-instrument", help="After the early visits.")
@click.option("--drop-threshold", type=float, help="Points below the baseline that flag (10).")
@click.option("--low-subscale-threshold", type=float, help="A subscale under this flags (60).")
@click.option("--timezone", "timezone_name", help="IANA time zone, e.g. Europe/Paris.")
@click.option("--language", help="Language of the therapist's note (en, fr, es).")
@click.option("--callback-url", help="A new callback URL (clinics whose notes go to one).")
@click.option("--name", help="The clinic's name, as clients read it.")
@click.option("--sender-name", help="Sender's name on check-in emails (\"\" for the default).")
@click.option("--reply-to", help="Where clients' replies go (\"\" for none).")
@click.option("--contact", help="One line telling clients how to reach the clinic, shown when "
              "their link has closed or they unsubscribed (\"\" for none).")
def configure(key, send_delay_minutes, window, reminder_after_hours, expire_after_days,
              quiet_days, grace_minutes, instrument, early_instrument, early_visits,
              later_instrument, drop_threshold, low_subscale_threshold, timezone_name,
              language, callback_url, name, sender_name, reply_to, contact):
    """Change a clinic's sending rules, instruments or flags; prints every setting.

    A new delay, window or time zone also moves the check-ins still waiting to be sent."""
    timing = {name: value for name, value in {
        "send_delay_minutes": send_delay_minutes, "reminder_after_hours": reminder_after_hours,
        "expire_after_days": expire_after_days, "quiet_days": quiet_days,
        "completion_grace_minutes": grace_minutes}.items() if value is not None}
    if window:
        start, _, end = window.partition("-")
        timing.update(window_start=start.strip(), window_end=end.strip())
    policy = instrument or {name: value for name, value in {
        "early": early_instrument, "early_visits": early_visits,
        "later": later_instrument}.items() if value is not None}
    flags = {name: value for name, value in {
        "drop_threshold": drop_threshold,
        "low_subscale_threshold": low_subscale_threshold}.items() if value is not None}

    sender = {part: value for part, value in (("name", sender_name), ("reply_to", reply_to),
                                              ("contact", contact)) if value is not None}
    retimed = bool(timezone_name or SEND_TIMING & timing.keys())

    app = app_or_exit()
    with app.app_context():
        if callback_url is not None:
            try:
                callbacks.change_url(key, callback_url)
            except callbacks.CallbackError as error:
                raise click.ClickException(str(error))
            click.echo(f"Callbacks now go to {callback_url}.", err=True)
        with database.session() as db:
            found = clinic_or_exit(db, key)
            try:
                if isinstance(policy, dict) and policy:
                    policy = {**instruments.policy(found), **policy}
                found.settings = settings.updated(found.settings, timing=timing,
                                                  instrument=policy or None, flags=flags,
                                                  sender=sender or None)
                if name is not None:
                    records.rename(found, name)
                if timezone_name or language:
                    records.set_locale(found, timezone=timezone_name, language=language)
            except (settings.SettingsError, records.ClinicError) as error:
                raise click.ClickException(str(error))
            shown = {"name": found.name, "timezone": found.timezone, "language": found.language,
                     **settings.effective(found.settings)}
            clinic_id = found.id
        # Once the new rules are committed, so a send job woken meanwhile reads them.
        replanned = sending.replan_pending(clinic_id) if retimed else None
    click.echo(json.dumps(shown, indent=2))
    rules = shown["timing"]
    if rules["reminder_after_hours"] >= rules["expire_after_days"] * 24:
        click.echo(f"No reminder goes out: at {rules['reminder_after_hours']:g} hours it would "
                   f"come after the link closes ({rules['expire_after_days']:g} days).",
                   err=True)
    if replanned is not None:  # on stderr: stdout stays the JSON above
        click.echo(f"{replanned} pending check-in(s) re-planned to the new timing.", err=True)
