"""The check-in rules: who gets a check-in, and when it is sent, reminded and expired.

Pure functions over plain values; the jobs apply them. Every rule is configurable per
clinic through ``clinic.settings["timing"]``; :data:`DEFAULT_TIMING` holds the
defaults (Jane-like timing: 3 hours after the visit, inside working hours).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Timing:
    send_delay_minutes: int = 180
    window_start: str = "09:00"
    window_end: str = "20:00"
    reminder_after_hours: float = 48
    expire_after_days: float = 7
    quiet_days: int = 14  # no new check-in within this many days of an answer
    completion_grace_minutes: int = 15  # platforms without a "completed" status

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None) -> Timing:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (settings or {}).items() if k in known}
        rules = replace(cls(), **values)
        rules.window()  # validates the times
        return rules

    def window(self) -> tuple[time, time]:
        start, end = _parse_clock(self.window_start), _parse_clock(self.window_end)
        if end is not None and start is not None and end <= start:
            raise ValueError(f"sending window end {self.window_end} is not after its start")
        return start, end


DEFAULT_TIMING = Timing()


def _parse_clock(value: str) -> time | None:
    """'09:00' → 09:00; '24:00' → None, meaning the end of the day."""
    if value == "24:00":
        return None
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day like 09:00")


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str | None = None


def eligibility(*, opted_out: bool, has_open_check_in: bool,
                last_answered_at: datetime | None, now: datetime,
                rules: Timing) -> Eligibility:
    if opted_out:
        return Eligibility(False, "the client opted out")
    if has_open_check_in:
        return Eligibility(False, "the client has a check-in still open")
    if last_answered_at and now - last_answered_at < timedelta(days=rules.quiet_days):
        return Eligibility(False, f"the client answered within the last {rules.quiet_days} days")
    return Eligibility(True)


def send_time(appointment_end: datetime, *, now: datetime, rules: Timing,
              zone: str) -> datetime:
    """When to send: the delay after the visit, not in the past, moved into the window."""
    earliest = max(appointment_end + timedelta(minutes=rules.send_delay_minutes), now)
    return into_window(earliest, rules=rules, zone=zone)


def into_window(moment: datetime, *, rules: Timing, zone: str) -> datetime:
    """The first instant at or after ``moment`` inside the clinic's sending window."""
    start, end = rules.window()
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    opens = datetime.combine(local.date(), start or time(0), tzinfo=tz)
    closes = (datetime.combine(local.date(), end, tzinfo=tz) if end
              else datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz))
    if local < opens:
        result = opens
    elif local >= closes:
        result = datetime.combine(local.date() + timedelta(days=1), start or time(0), tzinfo=tz)
    else:
        result = local
    # Round trip through UTC to settle times that fall in a DST gap.
    return result.astimezone(timezone.utc)


def reminder_time(sent_at: datetime, *, rules: Timing, zone: str) -> datetime:
    return into_window(sent_at + timedelta(hours=rules.reminder_after_hours),
                       rules=rules, zone=zone)


def expiry_time(sent_at: datetime, *, rules: Timing) -> datetime:
    return sent_at + timedelta(days=rules.expire_after_days)
