"""Where the dashboard's bars and lines go: plain geometry for the SVG templates
(``templates/admin/_charts.html``), drawn on the server so the charts need no script
and print as they show. Each chart's numbers are also given as a table beside it.

Coordinates are in the SVG's own units (``WIDTH`` × ``HEIGHT``); the SVG scales to its
container, so one drawing serves a phone and a desktop.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 40
COLOURS = {
    "sent": "#9db8ae", "answered": "#2f5d50", "expired": "#c48a3a",
    "needs-attention": "#b4533c", "some-concerns": "#d7ae5f", "working-well": "#2f5d50",
    "unscored": "#a3aca9",
    # Rebooking horizons: one green, darker the longer the horizon.
    "30": "#9db8ae", "60": "#5f8c7d", "90": "#2f5d50",
}
SPARE = ("#5c7f9c", "#8a6fa3", "#6d8f4e", "#9c6b5c")


def colour(name: str, index: int = 0) -> str:
    return COLOURS.get(name, SPARE[index % len(SPARE)])


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    text: str


def _plot() -> tuple[float, float]:
    return WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _nice_top(value: float) -> float:
    """A round top for the axis at or above ``value``: for small counts, a multiple of
    four, so each of the four steps is a whole number."""
    if value <= 0:
        return 4
    if value <= 40:
        return 4 * -(-value // 4)
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if value <= step * 5:
            return step * max(1, -(-value // step))
    return value


def _ticks(top: float, suffix: str = "") -> list[Tick]:
    _, height = _plot()
    return [Tick(TOP + height - height * part / 4, f"{top * part / 4:g}{suffix}")
            for part in range(5)]


def _short(label: str) -> str:
    """``2026-11`` → ``Nov 26``; other labels as they are."""
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
              "Dec")
    if len(label) == 7 and label[4] == "-" and label[:4].isdigit() and label[5:].isdigit():
        return f"{months[int(label[5:]) - 1]} {label[2:4]}"
    return label


def grouped(groups: list[str], series: list[tuple[str, str]],
            values: dict[tuple[str, str], float], *, top: float | None = None,
            suffix: str = "") -> dict:
    """Bars side by side in each group: ``series`` is (key, label); ``values`` by
    (group, key)."""
    width, height = _plot()
    top = top or _nice_top(max(values.values(), default=0))
    slot = width / max(len(groups), 1)
    bar = min(28.0, slot * 0.8 / max(len(series), 1))
    bars, labels = [], []
    for g, group in enumerate(groups):
        start = LEFT + slot * g + (slot - bar * len(series)) / 2
        labels.append(Label(LEFT + slot * g + slot / 2, _short(group)))
        for s, (key, label) in enumerate(series):
            value = values.get((group, key)) or 0
            tall = height * min(value, top) / top
            bars.append(Bar(start + bar * s, TOP + height - tall, bar - 2, tall,
                            colour(key, s), f"{_short(group)}, {label}: {value:g}{suffix}"))
    return {"width": WIDTH, "height": HEIGHT, "ticks": _ticks(top, suffix), "bars": bars,
            "labels": labels, "legend": [(label, colour(key, s))
                                         for s, (key, label) in enumerate(series)],
            "baseline": TOP + height, "left": LEFT, "right": WIDTH - RIGHT}


def stacked(groups: list[str], series: list[tuple[str, str]],
            values: dict[tuple[str, str], float]) -> dict:
    """One bar per group, its parts stacked (counts per band)."""
    width, height = _plot()
    totals = [sum(values.get((group, key)) or 0 for key, _ in series) for group in groups]
    top = _nice_top(max(totals, default=0))
    slot = width / max(len(groups), 1)
    bar = min(36.0, slot * 0.6)
    bars, labels = [], []
    for g, group in enumerate(groups):
        x = LEFT + slot * g + (slot - bar) / 2
        labels.append(Label(LEFT + slot * g + slot / 2, _short(group)))
        floor = TOP + height
        for s, (key, label) in enumerate(series):
            value = values.get((group, key)) or 0
            tall = height * value / top
            if value:
                bars.append(Bar(x, floor - tall, bar, tall, colour(key, s),
                                f"{_short(group)}, {label}: {value:g}"))
            floor -= tall
    return {"width": WIDTH, "height": HEIGHT, "ticks": _ticks(top), "bars": bars,
            "labels": labels, "legend": [(label, colour(key, s))
                                         for s, (key, label) in enumerate(series)],
            "baseline": TOP + height, "left": LEFT, "right": WIDTH - RIGHT}


def line(groups: list[str], values: dict[str, float | None], *, top: float = 100) -> dict:
    """A line through each group's value (a gap where there is none), with its points."""
    width, height = _plot()
    slot = width / max(len(groups), 1)
    points, labels, path, pen_down = [], [], [], False
    for g, group in enumerate(groups):
        x = LEFT + slot * g + slot / 2
        labels.append(Label(x, _short(group)))
        value = values.get(group)
        if value is None:
            pen_down = False
            continue
        y = TOP + height - height * min(value, top) / top
        path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
        points.append({"x": x, "y": y, "title": f"{_short(group)}: median {value:g}"})
    return {"width": WIDTH, "height": HEIGHT, "ticks": _ticks(top), "points": points,
            "path": " ".join(path), "labels": labels, "baseline": TOP + height,
            "left": LEFT, "right": WIDTH - RIGHT, "colour": COLOURS["answered"]}
