"""What an instrument is once its file has been read: immutable objects, no I/O.

``schema.py`` builds these from YAML; scoring, flags and talking points read them; the
survey page renders a form from ``Instrument.localized(language)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .language import pick, resolve

Texts = Mapping[str, str]
"""One string per language code."""

NOT_APPLICABLE = "na"
"""The answer a client gives by ticking "does not apply"."""

BUILT_IN_FLAGS = ("drop", "low_subscale", "ceiling", "first_low")
"""Flags Rapport raises for every instrument (see flags.py)."""

COMPARATORS = {
    "below": lambda value, line: value < line,
    "at_most": lambda value, line: value <= line,
    "above": lambda value, line: value > line,
    "at_least": lambda value, line: value >= line,
}


@dataclass(frozen=True)
class Scale:
    min: int
    max: int
    labels: Mapping[int, Texts]
    not_applicable: Texts | None = None

    @property
    def allows_not_applicable(self) -> bool:
        return self.not_applicable is not None

    def keyed(self, value: int, reverse: bool) -> int:
        return self.min + self.max - value if reverse else value


@dataclass(frozen=True)
class Subscale:
    id: str
    title: Texts
    """The short name, a word or two: the note's score line ("Goals 50/100")."""
    long_title: Texts | None = None
    """The long name, saying what the subscale is about in plain words: the note's first
    line when this subscale is the concern. Defaults to the short name."""

    def long_in(self, language: str) -> str:
        return pick(self.long_title or self.title, language)


@dataclass(frozen=True)
class Item:
    id: str
    text: Texts
    subscale: str | None = None
    reverse: bool = False
    labels: Mapping[int, Texts] | None = None
    """Point labels for this item alone (e.g. a line with its own two ends)."""
    concern: Texts | None = None
    """What a low answer means, in a few words for the note's first line ("felt unable to
    say something")."""


@dataclass(frozen=True)
class Scoring:
    method: str
    """'sum' or 'mean' of the item values, per subscale and overall."""
    max_missing: int = 0
    """How many blank or "does not apply" answers are filled in; more → not scored."""
    fill: str = "mean"
    """'mean': the mean of every answered item; 'subscale_mean': of the same subscale."""

    def combine(self, values: list[float]) -> float:
        total = sum(values)
        return total / len(values) if self.method == "mean" else total

    def bounds(self, scale: Scale, count: int) -> tuple[float, float]:
        if self.method == "mean":
            return float(scale.min), float(scale.max)
        return float(scale.min * count), float(scale.max * count)


@dataclass(frozen=True)
class Band:
    id: str
    start: float
    end: float
    label: Texts


@dataclass(frozen=True)
class Bands:
    score: str
    """Which overall score the ranges are on: 'normalized' (0–100) or 'raw'."""
    ranges: tuple[Band, ...]

    def find(self, raw: float, normalized: float) -> Band:
        value = normalized if self.score == "normalized" else raw
        # A band holds its start and not its end, except the top band, which holds the
        # scale's maximum: so every score has exactly one band.
        for band in self.ranges[:-1]:
            if value < band.end:
                return band
        return self.ranges[-1]


@dataclass(frozen=True)
class Condition:
    """When a talking point or an instrument flag applies (see README.md, "Conditions")."""

    subject: str
    """'flag', 'subscale', 'item', 'any_item', 'overall' or 'change'."""
    target: str | None = None
    """The flag code, subscale id, item id, or 'previous'/'baseline' for a change."""
    comparisons: tuple[tuple[str, float], ...] = ()
    raw: bool = False
    subscale: str | None = None
    """With ``flag: low_subscale``: only when this subscale is a low one; with ``flag:
    drop``: only when this subscale dropped the most."""

    def holds_for(self, value: float) -> bool:
        return all(COMPARATORS[name](value, line) for name, line in self.comparisons)


@dataclass(frozen=True)
class TalkingPointRule:
    id: str
    when: Condition
    priority: int
    """1 is the most important."""
    text: Texts


@dataclass(frozen=True)
class FlagRule:
    code: str
    when: Condition
    message: Texts


@dataclass(frozen=True)
class ScalePoint:
    value: int
    label: str | None


@dataclass(frozen=True)
class LocalizedItem:
    id: str
    text: str
    points: tuple[ScalePoint, ...]


@dataclass(frozen=True)
class LocalizedInstrument:
    """Everything the survey page needs to draw the form in one language."""

    language: str
    title: str
    intro: str | None
    items: tuple[LocalizedItem, ...]
    points: tuple[ScalePoint, ...]
    not_applicable: str | None
    comment_question: str | None


@dataclass(frozen=True)
class Instrument:
    id: str
    version: str
    title: Texts
    languages: tuple[str, ...]
    scale: Scale
    items: tuple[Item, ...]
    scoring: Scoring
    subscales: tuple[Subscale, ...] = ()
    bands: Bands | None = None
    talking_points: tuple[TalkingPointRule, ...] = ()
    flags: tuple[FlagRule, ...] = ()
    positive: Texts | None = None
    intro: Texts | None = None
    comment_question: Texts | None = None
    source: str | None = None
    """Free text: citation, licence, who supplied the wording."""
    path: Path | None = None
    """The file it was loaded from (None when built in memory)."""

    def item(self, item_id: str) -> Item:
        return next(item for item in self.items if item.id == item_id)

    def subscale(self, subscale_id: str) -> Subscale:
        return next(sub for sub in self.subscales if sub.id == subscale_id)

    def items_of(self, subscale_id: str) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.subscale == subscale_id)

    def overall_bounds(self) -> tuple[float, float]:
        return self.scoring.bounds(self.scale, len(self.items))

    def subscale_bounds(self, subscale_id: str) -> tuple[float, float]:
        return self.scoring.bounds(self.scale, len(self.items_of(subscale_id)))

    def localized(self, language: str | None) -> LocalizedInstrument:
        """The form's texts in ``language`` ('fr-CA' → 'fr'), else English, else the
        instrument's first language."""
        lang = resolve(language, self.languages)

        def points(labels: Mapping[int, Texts]) -> tuple[ScalePoint, ...]:
            return tuple(
                ScalePoint(value, _optional(labels.get(value), lang))
                for value in range(self.scale.min, self.scale.max + 1)
            )

        return LocalizedInstrument(
            language=lang,
            title=pick(self.title, lang),
            intro=_optional(self.intro, lang),
            items=tuple(
                LocalizedItem(
                    item.id, pick(item.text, lang), points(item.labels or self.scale.labels)
                )
                for item in self.items
            ),
            points=points(self.scale.labels),
            not_applicable=_optional(self.scale.not_applicable, lang),
            comment_question=_optional(self.comment_question, lang),
        )


def _optional(texts: Texts | None, language: str) -> str | None:
    return None if texts is None else pick(texts, language)
