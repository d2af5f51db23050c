"""Trend, baseline and change from a client's past results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from questionnaires import PastResult
from questionnaires.history import sparkline, summarize


def test_baseline_is_the_mean_of_the_first_three_scored_visits(visits):
    summary = summarize(
        visits(80, None, 90, 85, 60), current=70.0, at_ceiling=False, trend_length=8
    )

    assert summary.baseline == 85.0  # (80 + 90 + 85) / 3; the unscored visit is skipped
    assert summary.previous == 60.0
    assert summary.change_from_baseline == -15.0
    assert summary.change_from_previous == 10.0
    assert summary.trend == (80.0, 90.0, 85.0, 60.0, 70.0)


def test_baseline_uses_what_there_is_and_never_the_current_visit(visits):
    assert summarize(visits(72.5), 50.0, False, 8).baseline == 72.5
    assert summarize(visits(70, 75), 50.0, False, 8).baseline == 72.5
    first_visit = summarize([], 50.0, False, 8)
    assert (first_visit.baseline, first_visit.change_from_baseline) == (None, None)
    assert first_visit.trend == (50.0,)


def test_trend_keeps_the_last_n_values_including_the_current_one(visits):
    summary = summarize(visits(*range(10, 100, 10)), 95.0, False, trend_length=8)

    assert summary.trend == (30, 40, 50, 60, 70, 80, 90, 95.0)
    assert summarize(visits(40, 50), 60.0, False, trend_length=2).trend == (50, 60.0)


def test_unscored_current_visit_is_not_in_the_trend(visits):
    summary = summarize(visits(40, 50), None, False, 8)

    assert summary.trend == (40, 50)
    assert summary.change_from_previous is None


def test_history_is_put_in_time_order(visits):
    past = visits(40, 50, 60)

    summary = summarize(list(reversed(past)), 70.0, False, 8)

    assert summary.trend == (40, 50, 60, 70.0)
    assert summary.previous == 60


def test_ceiling_streak_counts_visits_in_a_row_ending_now():
    start = datetime(2026, 9, 1, tzinfo=UTC)
    past = [
        PastResult(start + timedelta(weeks=week), "T-1", "rapport-pulse", overall, {}, ceiling)
        for week, (overall, ceiling) in enumerate(
            [(100.0, True), (80.0, False), (100.0, True), (None, False), (100.0, True)]
        )
    ]

    # The unscored visit neither counts nor breaks the streak; the 80 breaks it.
    assert summarize(past, 100.0, True, 8).ceiling_streak == 3
    assert summarize(past, 100.0, False, 8).ceiling_streak == 0


def test_sparkline_shows_a_flagged_drop():
    # 10 points down raises the drop flag: it must not look like a flat line.
    assert sparkline([85, 85, 85, 75]) == "███▄"
    assert sparkline([85, 84, 84.5, 72.5]) == "███▃"
    assert sparkline([100, 100, 100, 75]) == "███▁"


def test_sparkline_spans_the_clients_own_range():
    assert sparkline([60, 70, 80, 90]) == "▁▃▆█"
    assert sparkline([0, 12.4, 12.5, 50, 87.4, 87.5, 100]) == "▁▁▂▅▇██"


def test_sparkline_keeps_noise_flat_and_a_steady_line_where_it_sits():
    # Within the 20-point minimum span a point or two moves a block at most.
    assert sparkline([92, 95, 93]) == "▇█▇"
    assert sparkline([20, 22, 21]) == "▂▃▂"
    assert sparkline([100, 100, 100]) == "███"
    assert sparkline([50, 50]) == "▅▅"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([]) == ""
