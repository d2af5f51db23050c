"""Talking points: turning flags and low answers into one concrete thing to do next visit.

The instrument's rules say what to suggest; here they are matched, ordered by priority
(1 first, then file order), stripped of repeats and cut to three, since a therapist
skimming a note before a visit acts on a few clear points, not on a list.
"""

from __future__ import annotations

from collections.abc import Iterable

from .conditions import Facts, evaluate
from .language import pick
from .model import Instrument, TalkingPointRule

MAX_POINTS = 3


def matching_rules(instrument: Instrument, facts: Facts) -> list[TalkingPointRule]:
    """Every rule whose condition holds, most important first."""
    matched = [rule for rule in instrument.talking_points if evaluate(rule.when, facts)]
    return sorted(matched, key=lambda rule: rule.priority)


def localized_points(rules: Iterable[TalkingPointRule], language: str) -> list[str]:
    """Up to three distinct texts in ``language`` (English, or the first language, if the
    instrument lacks it). Rules sharing a text (a YAML anchor) count once."""
    points: list[str] = []
    for rule in rules:
        text = pick(rule.text, language)
        if text not in points:
            points.append(text)
        if len(points) == MAX_POINTS:
            break
    return points
