"""``rapport clinic``: connect clinics, tune their rules, test them, see their health."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from plugin.cli import app_or_exit


@click.group()
def clinic() -> None:
    """Connect clinics, tune their rules, send a test, see whether they are healthy."""


def _clinic_or_exit(db, key: str):
    from plugin import clinics

    found = clinics.by_key(db, key)
    if found is None:
        raise click.ClickException(f"no clinic with key {key!r}; `rapport clinic list` shows them")
    return found


@clinic.command("add")
@click.option("--name", required=True, help="The clinic's name, as clients know it.")
@click.option("--platform", required=True, type=click.Choice(["generic", "square"]))
@click.option("--callback-url", help="generic: where Rapport POSTs client.alliance_updated.")
@click.option("--timezone", "timezone_name",
              help="IANA time zone for the sending window, e.g. Europe/Paris (default: "
              "Square's main location for a Square clinic, else UTC).")
@click.option("--language",
              help="Language of the therapist's note: en, fr or es (default: Square's "
              "main location's for a Square clinic, else en).")
@click.option("--access-token", help="square (manual mode): an access token.")
@click.option("--webhook-signature-key", help="square (manual mode): the subscription's key.")
@click.option("--notification-url", help="square (manual mode): the subscription's URL, "
              "exactly as registered in the Square Developer Console.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def add(name, platform, callback_url, timezone_name, language, access_token,
        webhook_signature_key, notification_url, as_json):
    """Add a clinic and print what its booking system needs."""
    from plugin import clinics, installs, storage
    from plugin.models import Clinic

    app = app_or_exit()
    with app.app_context():
        try:
            credentials = installs.manual_credentials(
                platform, callback_url=callback_url, access_token=access_token,
                webhook_signature_key=webhook_signature_key,
                notification_url=notification_url)
            key = installs.clinic_key(platform, credentials)
            with storage.session() as db:
                if key and clinics.by_key(db, key) is not None:
                    raise clinics.ClinicError(f"a clinic with the key {key!r} exists already")
            installs.check_with_platform(platform, credentials)
            left_out = [field for field, value in
                        (("timezone", timezone_name), ("language", language)) if not value]
            with storage.session() as db:
                created = clinics.create(
                    db, name=name, platform=platform, timezone=timezone_name or "UTC",
                    language=language or "en", credentials=credentials, key=key,
                    settings={clinics.FROM_PLATFORM: left_out}
                    if platform == "square" and left_out else None)
                result = installs.describe(created)
                clinic_id = created.clinic.id
            if platform == "square" and credentials.get("mode") == "manual":
                from plugin.accounts import square_settings
                from plugin.square_install import adopt_business_locale

                adopt_business_locale(clinic_id, {**credentials, **square_settings()})
            with storage.session() as db:
                found = db.get(Clinic, clinic_id)
                result.update(timezone=found.timezone, language=found.language)
                waiting = clinics.from_platform(found)
        except (clinics.ClinicError, installs.InstallError) as error:
            raise click.ClickException(str(error))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"Clinic {name!r} added ({platform}).")
    for label, key in installs.FIELD_LABELS:
        if key in result:
            click.echo(f"  {label:<26} {result[key]}")
    later = (" (until connected: then Square's main location's)"
             if result.get("connect_url") else
             " (Square did not say; change it with `rapport clinic configure`)")
    for label, key in (("Time zone:", "timezone"), ("Note language:", "language")):
        click.echo(f"  {label:<26} {result[key]}{later if key in waiting else ''}")
    for line in installs.next_steps(created):
        click.echo(line)


@clinic.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_clinics(as_json):
    """Every clinic, with its health at a glance."""
    from plugin import health, instruments, storage
    from plugin.models import Clinic

    app = app_or_exit()
    with app.app_context(), storage.session() as db:
        rows = [{"key": item.key, "name": item.name, "platform": item.platform,
                 "timezone": item.timezone, **health.clinic_summary(db, item)}
                for item in db.scalars(select(Clinic).order_by(Clinic.id))]
        skipped = instruments.problems()
    if skipped:  # on stderr, so --json output stays one document
        click.echo("Licensed instrument files skipped (clinics that chose them get the "
                   "shipped questionnaire until the file is fixed):", err=True)
        for line in skipped:
            click.echo(f"    {line}", err=True)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No clinics yet. Add one with: rapport clinic add --name NAME "
                   "--platform generic --callback-url URL")
        return
    states = {"active": "OK", "needs_reconnecting": "NEEDS RECONNECTING",
              "not_connected": "NOT CONNECTED YET"}
    for row in rows:
        state = states.get(row["status"], row["status"].upper())
        if state == "OK" and (row["write_backs_failed"] or row.get("last_check_in_problem")):
            state = "ATTENTION"
        click.echo(f"{row['key']}  {row['name']}  [{row['platform']}, {row['timezone']}]  {state}")
        if row["status_detail"]:
            click.echo(f"    {row['status_detail']}")
        if row.get("connect_url"):
            click.echo(f"    Connect Square: {row['connect_url']}")
        elif row.get("remedy"):
            click.echo(f"    To fix: {row['remedy']}")
        check_ins = ", ".join(f"{count} {status}" for status, count
                              in sorted(row["invitations_last_7_days"].items())) or "none"
        click.echo(f"    last event: {_local_time(row['last_event_at'], row['timezone'])}; "
                   f"check-ins (7 days): {check_ins}; "
                   f"write-backs pending {row['write_backs_pending']}, "
                   f"failed {row['write_backs_failed']}")
        if row["unprocessed_events"]:
            click.echo(f"    events stored, not yet processed: {row['unprocessed_events']} "
                       "(is a worker running?)")
        if row.get("last_check_in_problem"):
            click.echo(f"    latest check-in not sent: {row['last_check_in_problem']}")
        if row.get("last_write_back_error"):
            click.echo(f"    latest failed write-back: {row['last_write_back_error']} "
                       f"(once fixed: rapport clinic retry-write-backs {row['key']})")
        if row["write_backs_paused"]:
            click.echo(f"    write-backs waiting for the clinic to reconnect: "
                       f"{row['write_backs_paused']} (they resume by themselves then)")


def _local_time(stamp: str | None, zone: str) -> str:
    """An ISO time from the summary, in the clinic's time zone, to the minute."""
    if not stamp:
        return "none yet"
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(stamp).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


# The rules a waiting check-in's send time is computed from (with the time zone).
SEND_TIMING = frozenset({"send_delay_minutes", "window_start", "window_end"})


@clinic.command("configure")
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
def configure(key, send_delay_minutes, window, reminder_after_hours, expire_after_days,
              quiet_days, grace_minutes, instrument, early_instrument, early_visits,
              later_instrument, drop_threshold, low_subscale_threshold, timezone_name,
              language):
    """Change a clinic's sending rules, instruments or flags; prints every setting.

    A new delay, window or time zone also moves the check-ins still waiting to be sent."""
    from plugin import clinics, instruments, invitations, settings, storage

    follow_up = {name: value for name, value in {
        "send_delay_minutes": send_delay_minutes, "reminder_after_hours": reminder_after_hours,
        "expire_after_days": expire_after_days, "quiet_days": quiet_days,
        "completion_grace_minutes": grace_minutes}.items() if value is not None}
    if window:
        start, _, end = window.partition("-")
        follow_up.update(window_start=start.strip(), window_end=end.strip())
    policy = instrument or {name: value for name, value in {
        "early": early_instrument, "early_visits": early_visits,
        "later": later_instrument}.items() if value is not None}
    flags = {name: value for name, value in {
        "drop_threshold": drop_threshold,
        "low_subscale_threshold": low_subscale_threshold}.items() if value is not None}

    retimed = bool(timezone_name or SEND_TIMING & follow_up.keys())

    app = app_or_exit()
    with app.app_context():
        with storage.session() as db:
            found = _clinic_or_exit(db, key)
            try:
                if isinstance(policy, dict) and policy:
                    policy = {**instruments.policy(found), **policy}
                found.settings = settings.updated(found.settings, follow_up=follow_up,
                                                  instrument=policy or None, flags=flags)
                if timezone_name or language:
                    clinics.set_locale(found, timezone=timezone_name, language=language)
            except (settings.SettingsError, clinics.ClinicError) as error:
                raise click.ClickException(str(error))
            shown = {"timezone": found.timezone, "language": found.language,
                     **settings.effective(found.settings)}
            clinic_id = found.id
        # Once the new rules are committed, so a send job woken meanwhile reads them.
        replanned = invitations.replan_pending(clinic_id) if retimed else None
    click.echo(json.dumps(shown, indent=2))
    rules = shown["follow_up"]
    if rules["reminder_after_hours"] >= rules["expire_after_days"] * 24:
        click.echo(f"No reminder goes out: at {rules['reminder_after_hours']:g} hours it would "
                   f"come after the link closes ({rules['expire_after_days']:g} days).",
                   err=True)
    if replanned is not None:  # on stderr: stdout stays the JSON above
        click.echo(f"{replanned} pending check-in(s) re-planned to the new timing.", err=True)


@clinic.command("rotate-secret")
@click.argument("key")
@click.option("--retire-old", is_flag=True,
              help="Stop accepting every secret but the newest (after the sender switched).")
def rotate_secret(key, retire_old):
    """A new inbound webhook secret; the old ones keep working until retired."""
    from handlers import generic
    from plugin import clinics, storage

    app = app_or_exit()
    with app.app_context(), storage.session() as db:
        found = _clinic_or_exit(db, key)
        if found.platform != "generic":
            raise click.ClickException("secrets of this platform are rotated in its own console")
        values = clinics.credentials(found)
        if retire_old:
            values["inbound_secrets"] = values["inbound_secrets"][-1:]
            clinics.store_credentials(found, values)
            click.echo("Only the newest secret is accepted now.")
            return
        secret = generic.new_secret()
        values["inbound_secrets"].append(secret)
        clinics.store_credentials(found, values)
    click.echo(f"New webhook secret: {secret}\nBoth the old and the new secret are accepted. "
               f"Once your booking system uses the new one, run:\n"
               f"  rapport clinic rotate-secret {key} --retire-old")


@clinic.command("square")
@click.argument("key")
@click.option("--access-token", help="manual mode: a new personal access token.")
@click.option("--add-signature-key", help="manual mode: the subscription's new signature key "
              "(the old one keeps working until --retire-old-keys).")
@click.option("--retire-old-keys", is_flag=True, help="Accept only the newest signature key.")
def square_credentials(key, access_token, add_signature_key, retire_old_keys):
    """A manual-mode Square clinic's new token or signature key."""
    from plugin import clinics, installs, storage, writeback

    app = app_or_exit()
    with app.app_context():
        with storage.session() as db:
            found = _clinic_or_exit(db, key)
            values = clinics.credentials(found)
            if found.platform != "square":
                raise click.ClickException(
                    f"{key} is a {found.platform} clinic; this command updates a Square "
                    "clinic's token and signature keys (for a generic clinic's secret: "
                    "`rapport clinic rotate-secret`)")
            if values.get("mode") != "manual":
                raise click.ClickException(
                    "only manual-mode Square clinics are updated here; an OAuth clinic "
                    "reconnects at its Connect Square link (`rapport clinic list`)")
        if access_token:
            try:  # the new token is tried before it replaces one that may still work
                installs.check_with_platform("square", {**values, "access_token": access_token})
            except installs.InstallError as error:
                raise click.ClickException(str(error))
        with storage.session() as db:
            found = _clinic_or_exit(db, key)
            values = clinics.credentials(found)
            if access_token:
                values["access_token"] = access_token
            if add_signature_key:
                values["signature_keys"] = [*values["signature_keys"], add_signature_key]
            if retire_old_keys:
                values["signature_keys"] = values["signature_keys"][-1:]
            clinics.store_credentials(found, values)
            reconnected = bool(access_token) and found.status != "active"
            if reconnected:
                clinics.mark_connected(found)
            clinic_id, keys = found.id, len(values["signature_keys"])
        resumed = writeback.resume(clinic_id) if reconnected else 0
    click.echo(f"Saved. {keys} signature key(s) accepted."
               + (f" Reconnected; {resumed} write-back(s) resumed." if reconnected else ""))


@clinic.command("retry-write-backs")
@click.argument("key")
def retry_write_backs(key):
    """Send the clinic's failed write-backs again, once what refused them is fixed."""
    from plugin import storage, writeback

    app = app_or_exit()
    with app.app_context():
        with storage.session() as db:
            clinic_id = _clinic_or_exit(db, key).id
        retried = writeback.retry_failed(clinic_id)
    click.echo(f"{retried} failed write-back(s) queued again; a running worker sends them."
               if retried else "No failed write-backs.")


@clinic.command("erase-client")
@click.argument("key")
@click.argument("client_id")
def erase_client(key, client_id):
    """Erase what Rapport keeps about one client, on their request.

    CLIENT_ID is the client's id in the booking platform (Square: the customer id).
    Answers, comments, scores, check-ins, links, appointments and the webhook events
    naming the client are deleted. An opt-out stays, so no check-in goes out again.
    Rapport's note in the booking platform is yours to remove there.
    """
    from plugin import erasure, storage

    app = app_or_exit()
    with app.app_context(), storage.session() as db:
        clinic_id = _clinic_or_exit(db, key).id
        counts = erasure.erase_client(db, clinic_id, client_id)
    click.echo(f"Erased client {client_id!r}: {counts['responses']} answer(s), "
               f"{counts['check_ins']} check-in(s), {counts['appointments']} appointment(s), "
               f"{counts['event_bodies']} webhook event(s).")
    if counts["opted_out"]:
        click.echo("Their opt-out is kept (the platform's client id only), so no check-in "
                   "goes out again.")
    if counts["events_pending"]:
        click.echo(f"{counts['events_pending']} event(s) naming the client are still being "
                   "processed; run this command again once the worker has run.")
    click.echo("Remove Rapport's note from the client's profile in the booking platform "
               "yourself.")


@clinic.command("send-test")
@click.argument("key")
@click.option("--to", "email", required=True, help="Your own email address.")
def send_test(key, email):
    """Email yourself a real check-in; its answers show the note, nothing is written back."""
    from marshmallow import ValidationError, validate

    from plugin import invitations, storage

    try:
        validate.Email()(email)
    except ValidationError:
        raise click.BadParameter(f"{email!r} is not an email address; give your own, "
                                 "e.g. --to you@clinic.example", param_hint="--to")
    app = app_or_exit()
    with app.app_context():
        with storage.session() as db:
            clinic_id = _clinic_or_exit(db, key).id
        invitation = invitations.send_test(clinic_id, email)
    if invitation.status == "sent":
        click.echo(f"Test check-in sent to {email}. Open it on your phone: the thank-you page "
                   "shows the note your therapists would read.")
    else:
        raise click.ClickException(f"the test was not sent: {invitation.reason}")
