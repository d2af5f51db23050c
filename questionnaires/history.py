"""A client's past results, summed up against the current one: trend, baseline, change.

All values are on the 0–100 scale, so visits scored with different instruments (the
check-in early on, the pulse later) share one line.

The baseline is the mean of the first (up to) three scored past visits. It is the
client's own reference point: early visits, before any drift, which is what a drop is
measured against. It never includes the current visit, because that would dampen the
very drop it is meant to reveal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .rounding import rounded

BASELINE_VISITS = 3
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_MIN_SPAN = 20.0
"""The narrowest window (points on 0–100) a sparkline stretches over, so a wobble of a
point or two is not drawn as a plunge."""


@dataclass(frozen=True)
class PastResult:
    """One earlier visit's result, as stored after it was scored."""

    at: datetime
    therapist_id: str
    instrument_id: str
    overall: float | None
    """0–100; None when that response was not scored."""
    subscales: Mapping[str, float] = field(default_factory=dict)
    at_ceiling: bool = False
    low: bool | None = None
    """Whether it was low by its own instrument's line when it was scored (the top of
    that instrument's lowest band); None when not recorded, and then the current
    instrument's line decides."""


@dataclass(frozen=True)
class HistorySummary:
    trend: tuple[float, ...]
    """The last scored overall values, oldest first, ending with the current one if scored."""
    previous: float | None
    baseline: float | None
    change_from_previous: float | None
    change_from_baseline: float | None
    ceiling_streak: int
    """Visits in a row, ending now, with every answer at the top of the scale."""
    past_overall: tuple[float, ...]
    """Every scored past overall value, oldest first."""
    past_low: tuple[bool | None, ...]
    """For each of ``past_overall``: whether it was low by its own instrument's line."""
    subscale_baselines: Mapping[str, float] = field(default_factory=dict)
    """Each subscale's baseline: its mean over the visits the overall baseline is taken
    from, where they recorded it (visits on instruments with other subscales, or stored
    without them, add nothing)."""

    @property
    def sparkline(self) -> str:
        return sparkline(self.trend)


def summarize(
    past: Iterable[PastResult], current: float | None, at_ceiling: bool, trend_length: int
) -> HistorySummary:
    """Sum up ``past`` (any order; sorted by time here) with the current overall value."""
    scored = [result for result in sorted(past, key=lambda r: r.at) if result.overall is not None]
    past_overall = tuple(result.overall for result in scored)
    previous = past_overall[-1] if past_overall else None
    first = past_overall[:BASELINE_VISITS]
    baseline = rounded(sum(first) / len(first)) if first else None
    by_subscale: dict[str, list[float]] = {}
    for result in scored[:BASELINE_VISITS]:
        for sub_id, value in (result.subscales or {}).items():
            by_subscale.setdefault(sub_id, []).append(value)
    values = past_overall + ((current,) if current is not None else ())
    streak = 0
    if at_ceiling:
        streak = 1
        for result in reversed(scored):
            if not result.at_ceiling:
                break
            streak += 1
    return HistorySummary(
        trend=values[-trend_length:],
        previous=previous,
        baseline=baseline,
        change_from_previous=_change(current, previous),
        change_from_baseline=_change(current, baseline),
        ceiling_streak=streak,
        past_overall=past_overall,
        past_low=tuple(result.low for result in scored),
        subscale_baselines={
            sub_id: rounded(sum(values) / len(values)) for sub_id, values in by_subscale.items()
        },
    )


def _change(current: float | None, reference: float | None) -> float | None:
    return None if current is None or reference is None else rounded(current - reference)


def sparkline(values: Iterable[float]) -> str:
    """One block per value, scaled to this client's own range, so a drop that raised a
    flag shows: 85 → 75 draws a step of three blocks, where on the whole 0–100 scale
    (12.5 points a block) it would vanish.

    The window spans the lowest to the highest value shown, but never less than
    ``SPARK_MIN_SPAN`` points. When the values are closer than that, the window is
    widened on each side in proportion to the room left on the 0–100 scale, so a steady
    high line is still drawn high, a steady low one low, and noise stays flat.
    """
    values = list(values)
    if not values:
        return ""
    low, high = min(values), max(values)
    spread = high - low
    if spread < SPARK_MIN_SPAN:
        slack = SPARK_MIN_SPAN - spread
        room = 100 - spread  # > 80 here: the room below ``low`` plus the room above ``high``
        low -= slack * max(0.0, low) / room
        spread = SPARK_MIN_SPAN
    top = len(SPARK_BLOCKS) - 1
    return "".join(
        SPARK_BLOCKS[min(top, max(0, int((value - low) / spread * len(SPARK_BLOCKS))))]
        for value in values
    )
