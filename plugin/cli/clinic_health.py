"""``rapport clinic list`` and ``retry-write-backs``: is each clinic healthy, and putting
right what failed once its cause is fixed."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select

import handlers
from plugin.cli.base import app_or_exit, clinic_or_exit
from plugin.clinics import health
from plugin.pipeline import instruments, write_back
from plugin.store import database
from plugin.store.models import Clinic


@click.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_clinics(as_json):
    """Every clinic, with its health at a glance."""
    app = app_or_exit()
    with app.app_context(), database.session() as db:
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
        if state == "OK" and (row["write_backs_failed"] or row.get("last_check_in_problem")
                              or row.get("last_poll_problem")):
            state = "ATTENTION"
        click.echo(f"{row['key']}  {row['name']}  [{row['platform']}, {row['timezone']}]  {state}")
        if row["status_detail"]:
            click.echo(f"    {row['status_detail']}")
        if row.get("connect_url"):
            click.echo(f"    Connect {handlers.platform(row['platform']).title}: "
                       f"{row['connect_url']}")
        elif row.get("remedy"):
            click.echo(f"    To fix: {row['remedy']}")
        check_ins = ", ".join(f"{count} {status}" for status, count
                              in sorted(row["check_ins_last_7_days"].items())) or "none"
        click.echo(f"    last event: {_local_time(row['last_event_at'], row['timezone'])}; "
                   f"check-ins (7 days): {check_ins}; "
                   f"write-backs pending {row['write_backs_pending']}, "
                   f"failed {row['write_backs_failed']}")
        if "next_poll_at" in row:
            click.echo(f"    polled: last {_local_time(row['last_poll_at'], row['timezone'])}, "
                       f"next {_local_time(row['next_poll_at'], row['timezone'], 'when due')}"
                       f" (rapport clinic poll {row['key']} polls now)")
        if row.get("last_poll_problem") and row["status"] == "active":
            click.echo(f"    latest poll failed "
                       f"({_local_time(row['last_poll_problem_at'], row['timezone'])}): "
                       f"{row['last_poll_problem']}")
        click.echo(f"    API calls this month: {row['api_calls_this_month']}")
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


def _local_time(stamp: str | None, zone: str, none: str = "none yet") -> str:
    """An ISO time from the summary, in the clinic's time zone, to the minute."""
    if not stamp:
        return none
    return datetime.fromisoformat(stamp).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


@click.command("retry-write-backs")
@click.argument("key")
def retry_write_backs(key):
    """Send the clinic's failed write-backs again, once what refused them is fixed."""
    app = app_or_exit()
    with app.app_context():
        with database.session() as db:
            clinic_id = clinic_or_exit(db, key).id
        retried = write_back.retry_failed(clinic_id)
    click.echo(f"{retried} failed write-back(s) queued again; a running worker sends them."
               if retried else "No failed write-backs.")
