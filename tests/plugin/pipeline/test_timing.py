"""The check-in rules' clock: the send window, reminders and expiry in the clinic's own
time zone, across daylight-saving changes. Pure: plain datetimes in, datetimes out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from plugin.pipeline.timing import (
    DEFAULT_TIMING,
    Timing,
    eligibility,
    expiry_time,
    into_window,
    reminder_time,
    send_time,
)

LONDON = "Europe/London"
NEW_YORK = "America/New_York"
# 2026: London springs forward on 29 March (01:00 GMT → 02:00 BST) and falls back on
# 25 October (02:00 BST → 01:00 GMT); New York on 8 March (02:00 EST → 03:00 EDT) and
# 1 November (02:00 EDT → 01:00 EST).


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def local(zone: str, *parts, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold)


def window(start: str = "09:00", end: str = "20:00", **rules) -> Timing:
    return Timing.from_settings({"window_start": start, "window_end": end, **rules})


@pytest.mark.parametrize(("zone", "visit_end", "expected"), [
    # The evening before the change: 3 h later is past 20:00, so the next morning at
    # 09:00 on the clinic's wall clock, whatever its offset has become overnight.
    (LONDON, local(LONDON, 2026, 3, 28, 19, 30), local(LONDON, 2026, 3, 29, 9)),
    (LONDON, local(LONDON, 2026, 10, 24, 19, 30), local(LONDON, 2026, 10, 25, 9)),
    (NEW_YORK, local(NEW_YORK, 2026, 3, 7, 18), local(NEW_YORK, 2026, 3, 8, 9)),
    (NEW_YORK, local(NEW_YORK, 2026, 10, 31, 18), local(NEW_YORK, 2026, 11, 1, 9)),
])
def test_the_window_opens_at_the_same_wall_clock_time_across_a_dst_change(
        zone, visit_end, expected):
    sent = send_time(visit_end, now=visit_end, rules=window(), zone=zone)
    assert sent == expected
    assert sent.tzinfo is UTC
    assert sent.astimezone(ZoneInfo(zone)).hour == 9


def test_the_window_in_utc_moves_with_the_offset():
    """The same 09:00 opening is 09:00 UTC in London's winter and 08:00 UTC in summer."""
    rules = window()
    assert send_time(utc(2026, 10, 24, 19, 30), now=utc(2026, 10, 24, 19, 30), rules=rules,
                     zone=LONDON) == utc(2026, 10, 25, 9)
    assert send_time(utc(2026, 3, 28, 19, 30), now=utc(2026, 3, 28, 19, 30), rules=rules,
                     zone=LONDON) == utc(2026, 3, 29, 8)
    assert send_time(utc(2026, 3, 7, 23), now=utc(2026, 3, 7, 23), rules=rules,
                     zone=NEW_YORK) == utc(2026, 3, 8, 13)
    assert send_time(utc(2026, 10, 31, 22), now=utc(2026, 10, 31, 22), rules=rules,
                     zone=NEW_YORK) == utc(2026, 11, 1, 14)


def test_the_delay_counts_elapsed_time_not_the_wall_clock():
    """Three hours after 00:30 GMT on the spring-forward night is 03:30 UTC: the wall
    clock reads 04:30 BST, not 03:30."""
    end = utc(2026, 3, 29, 0, 30)
    sent = send_time(end, now=end, rules=window("00:00", "24:00"), zone=LONDON)
    assert sent == utc(2026, 3, 29, 3, 30)
    assert sent.astimezone(ZoneInfo(LONDON)).hour == 4


@pytest.mark.parametrize(("zone", "opening", "moment", "expected"), [
    # London's clocks skip 01:00–02:00 on 29 March: a window opening at 01:30 opens at
    # 01:30 UTC that night (02:30 BST), an hour of wall clock later, never at a time
    # that does not exist and never before the moment asked about.
    (LONDON, "01:30", utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 1, 30)),
    # New York skips 02:00–03:00 on 8 March: 02:30 opens at 07:30 UTC (03:30 EDT).
    (NEW_YORK, "02:30", utc(2026, 3, 8, 5), utc(2026, 3, 8, 7, 30)),
])
def test_a_window_opening_in_the_spring_forward_gap_opens_at_a_real_instant(
        zone, opening, moment, expected):
    sent = into_window(moment, rules=window(opening, "20:00"), zone=zone)
    assert sent == expected
    assert sent >= moment
    wall = sent.astimezone(ZoneInfo(zone))
    assert wall.astimezone(UTC) == sent  # a real instant: it survives the round trip
    assert wall.strftime("%H:%M") >= opening


def test_a_send_after_the_gap_on_the_spring_forward_day_stays_as_it_is():
    moment = utc(2026, 3, 29, 1, 45)  # 02:45 BST, just after the gap, inside the window
    assert into_window(moment, rules=window("01:30", "20:00"), zone=LONDON) == moment


def test_a_window_opening_in_the_repeated_hour_opens_at_its_first_occurrence():
    """On 25 October London's 01:00–02:00 happens twice; the window opens the first time
    the clock reads 01:30 (BST, 00:30 UTC)."""
    moment = utc(2026, 10, 24, 23, 45)  # 00:45 BST
    assert into_window(moment, rules=window("01:30", "20:00"), zone=LONDON) == utc(
        2026, 10, 25, 0, 30)


@pytest.mark.xfail(strict=True, reason=(
    "into_window compares wall clocks, ignoring the fold: in the repeated hour the "
    "second 01:15 (GMT) reads as before a 01:30 opening, which was an hour earlier"))
def test_a_moment_in_the_second_pass_of_the_repeated_hour_is_not_moved_back():
    moment = utc(2026, 10, 25, 1, 15)  # 01:15 GMT, the second time the clock shows 01:15
    assert into_window(moment, rules=window("01:30", "20:00"), zone=LONDON) >= moment


def test_reminders_are_elapsed_hours_then_moved_into_the_window():
    rules = window(reminder_after_hours=48)
    # 48 h after 10:00 GMT on Friday is 10:00 UTC on Sunday: 11:00 BST, inside the window.
    assert reminder_time(utc(2026, 3, 27, 10), rules=rules, zone=LONDON) == utc(
        2026, 3, 29, 10)
    # 48 h after 18:30 GMT is 19:30 BST: still inside.
    assert reminder_time(utc(2026, 3, 27, 18, 30), rules=rules, zone=LONDON) == utc(
        2026, 3, 29, 18, 30)
    # 48 h after 19:30 GMT is 20:30 BST: past closing, so 09:00 BST the next morning.
    assert reminder_time(utc(2026, 3, 27, 19, 30), rules=rules, zone=LONDON) == utc(
        2026, 3, 30, 8)
    # Falling back in New York: 48 h after 19:30 EDT is 18:30 EST, inside the window.
    assert reminder_time(utc(2026, 10, 30, 23, 30), rules=rules, zone=NEW_YORK) == local(
        NEW_YORK, 2026, 11, 1, 18, 30)


def test_expiry_is_elapsed_days_whatever_the_clocks_do():
    sent = utc(2026, 3, 25, 10)
    assert expiry_time(sent, rules=DEFAULT_TIMING) == utc(2026, 4, 1, 10)
    assert expiry_time(sent, rules=window(expire_after_days=0.5)) == utc(2026, 3, 25, 22)


@pytest.mark.parametrize(("wall", "expected"), [
    ((2026, 6, 1, 23, 59), (2026, 6, 1, 23, 59)),  # 24:00: open until midnight
    ((2026, 6, 1, 0, 30), (2026, 6, 1, 9)),  # after midnight: closed until it opens
    ((2026, 6, 1, 8, 59), (2026, 6, 1, 9)),
    ((2026, 6, 1, 9), (2026, 6, 1, 9)),  # the opening minute itself is inside
])
def test_a_window_ending_at_24_00_runs_to_midnight(wall, expected):
    moment = local(LONDON, *wall)
    assert into_window(moment, rules=window("09:00", "24:00"), zone=LONDON) == local(
        LONDON, *expected)


@pytest.mark.parametrize("moment", [
    utc(2026, 3, 29, 0, 59), utc(2026, 3, 29, 1), utc(2026, 10, 25, 0, 30),
    utc(2026, 10, 25, 1, 30), utc(2026, 6, 1, 23, 59, 59)])
def test_a_window_from_00_00_to_24_00_is_always_open(moment):
    assert into_window(moment, rules=window("00:00", "24:00"), zone=LONDON) == moment


def test_a_window_ending_at_24_00_on_the_fall_back_day_is_a_25_hour_day():
    """At 23:30 GMT on 25 October the window (to 24:00) is still open."""
    moment = utc(2026, 10, 25, 23, 30)
    assert into_window(moment, rules=window("09:00", "24:00"), zone=LONDON) == moment


def test_the_closing_minute_is_outside_the_window():
    moment = local(LONDON, 2026, 6, 1, 20)
    assert into_window(moment, rules=window(), zone=LONDON) == local(LONDON, 2026, 6, 2, 9)


def test_a_send_never_goes_in_the_past():
    now = utc(2026, 6, 1, 12)
    sent = send_time(now - timedelta(days=2), now=now, rules=window(), zone=LONDON)
    assert sent == now


@pytest.mark.parametrize(("start", "end"), [("20:00", "09:00"), ("09:00", "09:00")])
def test_a_window_that_ends_before_it_starts_is_refused(start, end):
    with pytest.raises(ValueError, match="is not after its start"):
        window(start, end)


@pytest.mark.parametrize("value", ["9am", "25", "nine:00"])
def test_a_time_that_is_not_a_time_of_day_is_refused(value):
    with pytest.raises(ValueError, match="is not a time of day"):
        window(value, "20:00")


def test_settings_unknown_to_the_rules_are_ignored():
    rules = Timing.from_settings({"send_delay_minutes": 0, "colour": "blue"})
    assert rules.send_delay_minutes == 0 and rules.window_start == "09:00"


def test_eligibility_reasons_in_order():
    now = utc(2026, 6, 15, 12)
    rules = DEFAULT_TIMING

    def check(**given):
        values = {"opted_out": False, "has_open_check_in": False, "last_answered_at": None,
                  **given}
        return eligibility(now=now, rules=rules, **values)

    assert check().eligible
    assert check(opted_out=True, has_open_check_in=True).reason == "the client opted out"
    assert check(has_open_check_in=True).reason == "the client has a check-in still open"
    assert check(last_answered_at=now - timedelta(days=13)).reason == (
        "the client answered within the last 14 days")
    assert check(last_answered_at=now - timedelta(days=14)).eligible
