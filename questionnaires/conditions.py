"""Deciding whether a rule's ``when`` holds for one scored response and its history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .model import Condition
from .scoring import Answer, Score


@dataclass(frozen=True)
class Facts:
    """What a condition can look at."""

    score: Score
    answers: Mapping[str, Answer | None]
    changes: Mapping[str, float | None] = field(default_factory=dict)
    """'previous' and 'baseline': change of the overall score on 0–100."""
    flags: Mapping[str, Mapping] = field(default_factory=dict)
    """Raised flags: code → detail."""


def evaluate(condition: Condition, facts: Facts) -> dict | None:
    """What matched, as a small detail dict, or None when the condition does not hold."""
    subject, target, score = condition.subject, condition.target, facts.score
    if subject == "flag":
        detail = facts.flags.get(target)
        if detail is None:
            return None
        if condition.subscale is not None and condition.subscale not in _subscales_of(detail):
            return None
        return {"flag": target}
    if subject == "item":
        # Items are compared as the client answered them, before reverse keying: the rule's
        # author reads the item and its scale labels, so that is the number they mean.
        value = facts.answers.get(target)
        return _compared(condition, {"item": target}, value if isinstance(value, int) else None)
    if subject == "any_item":
        matched = {
            item_id: value
            for item_id, value in facts.answers.items()
            if isinstance(value, int) and condition.holds_for(value)
        }
        return {"items": matched} if matched else None
    if subject == "change":
        return _compared(condition, {"change": target}, facts.changes.get(target))
    if not score.scored:
        return None
    if subject == "overall":
        return _compared(condition, {}, score.overall_raw if condition.raw else score.overall)
    subscale = score.subscales[target]
    return _compared(
        condition, {"subscale": target}, subscale.raw if condition.raw else subscale.normalized
    )


def _subscales_of(detail: Mapping) -> list[str]:
    """The subscales a flag is about: the low ones, or the one that dropped the most."""
    if "subscales" in detail:
        return list(detail["subscales"])
    return [detail["subscale"]] if detail.get("subscale") else []


def _compared(condition: Condition, detail: dict, value: float | None) -> dict | None:
    if value is None or isinstance(value, bool) or not condition.holds_for(value):
        return None
    return {**detail, "value": value}
