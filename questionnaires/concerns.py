"""What is low in one response: answers and subscales below the clinic's line.

One line for both, on the 0–100 scale: the clinic's ``low_subscale_threshold`` (60 by
default). An answer is placed on 0–100 after reverse keying, so "completely true" to
"there was something you kept to yourself" is as low as "not at all true" to "the
pressure suited you". On a 1–5 scale 3 (50) is low and 4 (75) is not; on a 0–10 line,
5 is low and 6 is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .model import Instrument
from .scoring import Answer, Score


@dataclass(frozen=True)
class LowAnswer:
    item_id: str
    given: int
    """As the client answered."""
    value: int
    """After reverse keying: higher is always better."""
    normalized: float
    """``value`` on 0–100."""


def low_answers(
    instrument: Instrument, answers: Mapping[str, Answer | None], line: float
) -> tuple[LowAnswer, ...]:
    """Answers below ``line`` (0–100), lowest first, then in the instrument's order."""
    scale = instrument.scale
    found = []
    for item in instrument.items:
        given = answers.get(item.id)
        if isinstance(given, bool) or not isinstance(given, int):
            continue  # blank or "does not apply"
        value = scale.keyed(given, item.reverse)
        normalized = (value - scale.min) / (scale.max - scale.min) * 100
        if normalized < line:
            found.append(LowAnswer(item.id, given, value, normalized))
    return tuple(sorted(found, key=lambda low: low.normalized))


def low_subscales(score: Score, line: float) -> tuple[str, ...]:
    """Subscales below ``line`` (0–100), lowest first, then in the instrument's order."""
    low = [sub_id for sub_id, sub in score.subscales.items() if sub.normalized < line]
    return tuple(sorted(low, key=lambda sub_id: score.subscales[sub_id].normalized))
