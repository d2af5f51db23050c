"""Talking points: turning flags and low answers into one concrete thing to do next visit.

The instrument's rules say what to suggest; here they are matched, ordered, stripped of
repeats and cut to three, since a therapist skimming a note before a visit acts on a few
clear points, not on a list. Order: priority (1 first); within a priority, the rule
about the weakest thing first (a rule on an item by that answer on 0–100, a rule on a
subscale, or on a low subscale or a drop narrowed to one, by that subscale's score),
rules about nothing in particular after those, each group in file order.
"""

from __future__ import annotations

from collections.abc import Iterable

from .conditions import Facts, evaluate
from .language import pick
from .model import Instrument, TalkingPointRule

MAX_POINTS = 3
UNRANKED = 101.0
"""Above any 0–100 value: a rule about no item or subscale comes after those that are."""


def matching_rules(instrument: Instrument, facts: Facts) -> list[TalkingPointRule]:
    """Every rule whose condition holds, most important first."""
    matched = [rule for rule in instrument.talking_points if evaluate(rule.when, facts)]
    return sorted(matched, key=lambda rule: (rule.priority, _weakness(rule, instrument, facts)))


def _weakness(rule: TalkingPointRule, instrument: Instrument, facts: Facts) -> float:
    """The 0–100 value of what the rule is about: lower is weaker."""
    when = rule.when
    if when.subject == "item":
        given = facts.answers.get(when.target)
        if isinstance(given, bool) or not isinstance(given, int):
            return UNRANKED
        scale = instrument.scale
        keyed = scale.keyed(given, instrument.item(when.target).reverse)
        return (keyed - scale.min) / (scale.max - scale.min) * 100
    sub_id = when.target if when.subject == "subscale" else when.subscale
    if sub_id is not None and sub_id in facts.score.subscales:
        return facts.score.subscales[sub_id].normalized
    return UNRANKED


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
