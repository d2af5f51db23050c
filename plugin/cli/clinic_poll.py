"""``rapport clinic poll KEY``: ask a polled platform what changed for one clinic, now,
rather than at its next round (for admins, demos and tests)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import click

from plugin.cli.base import app_or_exit, clinic_or_exit
from plugin.clinics.platforms import platform_of
from plugin.pipeline import polling
from plugin.store import database


@click.command("poll")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def poll(key, as_json):
    """Poll the clinic's platform once, now, and say what it found."""
    app = app_or_exit()
    with app.app_context():
        with database.session() as db:
            clinic = clinic_or_exit(db, key)
            clinic_id, title, zone = clinic.id, platform_of(clinic).title, clinic.timezone
        outcome = polling.poll(clinic_id, force=True)
        polling.follow_up(outcome)
    if as_json:
        click.echo(json.dumps(_as_dict(outcome), indent=2))
    elif outcome.skipped:
        raise click.ClickException(f"{key} was not polled: {outcome.skipped}")
    else:
        for line in _lines(outcome, title, zone):
            click.echo(line)
    if outcome.skipped or (outcome.problem and not outcome.read):
        raise SystemExit(1)


def _as_dict(outcome: polling.Outcome) -> dict:
    return {"polled": not outcome.skipped, "skipped": outcome.skipped,
            "requests": outcome.calls, "read": outcome.read, "new": outcome.stored,
            "statuses": dict(outcome.statuses), "ignored": dict(outcome.ignored),
            "more_waiting": outcome.more, "problem": outcome.problem,
            "next_poll_at": outcome.next_poll_at.isoformat() if outcome.next_poll_at else None}


def _lines(outcome: polling.Outcome, title: str, zone: str) -> list[str]:
    if outcome.problem and not outcome.read:
        return [f"{title} was asked, and nothing was read: {outcome.problem}",
                f"Next poll: {_when(outcome.next_poll_at, zone)}."]
    if not outcome.calls:
        return [f"{title} was asked moments ago: nothing to ask for yet.",
                f"Next poll {_when(outcome.next_poll_at, zone)}."]
    found = ", ".join(f"{count} {status.replace('_', '-')}"
                      for status, count in sorted(outcome.statuses.items()))
    queued = (" — queued for processing (a running worker handles them; "
              "`rapport worker --burst` runs them now)") if outcome.stored else ""
    lines = [f"{title}: {outcome.calls} request(s), {outcome.read} appointment change(s) "
             f"read{f' ({found})' if found else ''}; {outcome.stored} new{queued}."]
    for reason, count in sorted(outcome.ignored.items()):
        lines.append(f"  {count} left alone: {reason}")
    if outcome.problem:
        lines.append(f"  problem: {outcome.problem}")
    if outcome.more:
        lines.append(f"More is waiting: the worker goes on at {_when(outcome.next_poll_at, zone)}"
                     ", at the pace the platform allows.")
    else:
        lines.append(f"Nothing more waiting; next poll {_when(outcome.next_poll_at, zone)}.")
    return lines


def _when(moment: datetime | None, zone: str) -> str:
    if moment is None:
        return "when due"
    local = moment.astimezone(ZoneInfo(zone))
    same_day = local.date() == datetime.now(timezone.utc).astimezone(ZoneInfo(zone)).date()
    return local.strftime("%H:%M:%S %Z" if same_day else "%Y-%m-%d %H:%M %Z")
