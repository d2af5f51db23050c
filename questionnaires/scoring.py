"""Scoring one response: reverse keys, filling gaps, sum or mean, 0–100, band.

Every score is also given on 0–100, ``(raw - lowest possible) / (highest - lowest) * 100``,
so instruments with different scales can share one trend line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import labels
from .errors import AnswerError
from .language import pick
from .model import NOT_APPLICABLE, Band, Instrument
from .rounding import rounded

Answer = int | str
"""An item's answer: a point on the scale, or NOT_APPLICABLE ('na')."""


@dataclass(frozen=True)
class SubscaleScore:
    raw: float
    normalized: float


@dataclass(frozen=True)
class Score:
    instrument_id: str
    instrument_version: str
    scored: bool
    overall_raw: float | None = None
    overall: float | None = None
    """0–100, one decimal; None when not scored."""
    subscales: dict[str, SubscaleScore] = field(default_factory=dict)
    band: Band | None = None
    item_values: dict[str, float] = field(default_factory=dict)
    """Per item after reverse keying and filling (answered items only when not scored)."""
    not_applicable: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    at_ceiling: bool = False
    """Every answer at the top of the scale: read it as "ask", not as "perfect"."""
    reasons: Mapping[str, str] = field(default_factory=dict)
    """Why it is not scored, one plain sentence per language."""

    @property
    def reason(self) -> str | None:
        return self.reason_in("en")

    def reason_in(self, language: str) -> str | None:
        return pick(self.reasons, language) if self.reasons else None

    def to_dict(self, language: str = "en") -> dict:
        return {
            "instrument": {"id": self.instrument_id, "version": self.instrument_version},
            "scored": self.scored,
            "reason": self.reason_in(language),
            "overall": self.overall,
            "overall_raw": self.overall_raw,
            "subscales": {
                sub_id: {"raw": sub.raw, "normalized": sub.normalized}
                for sub_id, sub in self.subscales.items()
            },
            "band": None
            if self.band is None
            else {"id": self.band.id, "label": pick(self.band.label, language)},
            "item_values": dict(self.item_values),
            "at_ceiling": self.at_ceiling,
        }


def score(instrument: Instrument, answers: Mapping[str, Answer | None]) -> Score:
    """Score ``answers`` (item id → int on the scale, 'na', or absent/None for blank).

    Raises ``AnswerError`` for an unknown item or a value no form could produce.
    """
    given = _checked(instrument, answers)
    scale = instrument.scale
    keyed = {
        item.id: float(scale.keyed(given[item.id], item.reverse))
        for item in instrument.items
        if isinstance(given.get(item.id), int)
    }
    not_applicable = tuple(i.id for i in instrument.items if given.get(i.id) == NOT_APPLICABLE)
    missing = tuple(i.id for i in instrument.items if i.id not in given)
    unscored = {
        "instrument_id": instrument.id,
        "instrument_version": instrument.version,
        "scored": False,
        "item_values": keyed,
        "not_applicable": not_applicable,
        "missing": missing,
    }
    limit = instrument.scoring.max_missing
    if len(not_applicable) + len(missing) > limit:
        reasons = {
            lang: _gap_reason(lang, len(not_applicable), len(missing), limit)
            for lang in labels.languages()
        }
        return Score(**unscored, reasons=reasons)
    values, empty_subscale = _filled(instrument, keyed)
    if empty_subscale is not None:
        title = instrument.subscale(empty_subscale).title
        reasons = {
            lang: labels.label(lang, "reason.empty_subscale", subscale=pick(title, lang))
            for lang in labels.languages()
        }
        return Score(**unscored, reasons=reasons)

    overall_raw = instrument.scoring.combine(list(values.values()))
    overall = _normalized(overall_raw, instrument.overall_bounds())
    subscales = {}
    for sub in instrument.subscales:
        raw = instrument.scoring.combine([values[item.id] for item in instrument.items_of(sub.id)])
        subscales[sub.id] = SubscaleScore(
            rounded(raw, 2), _normalized(raw, instrument.subscale_bounds(sub.id))
        )
    band = instrument.bands.find(rounded(overall_raw, 2), overall) if instrument.bands else None
    return Score(
        **{**unscored, "scored": True, "item_values": values},
        overall_raw=rounded(overall_raw, 2),
        overall=overall,
        subscales=subscales,
        band=band,
        at_ceiling=all(value == scale.max for value in keyed.values()),
    )


def _checked(instrument: Instrument, answers: Mapping[str, Answer | None]) -> dict[str, Answer]:
    scale = instrument.scale
    item_ids = {item.id for item in instrument.items}
    checked: dict[str, Answer] = {}
    for item_id, value in answers.items():
        if item_id not in item_ids:
            raise AnswerError(item_id, f"no such item in '{instrument.id}'")
        if value is None:
            continue
        if value == NOT_APPLICABLE:
            if not scale.allows_not_applicable:
                raise AnswerError(item_id, f"'{instrument.id}' offers no 'does not apply' answer")
        elif isinstance(value, bool) or not isinstance(value, int):
            raise AnswerError(item_id, f"{value!r} is not a whole number from the scale")
        elif not scale.min <= value <= scale.max:
            raise AnswerError(item_id, f"{value} is not on the scale {scale.min}–{scale.max}")
        checked[item_id] = value
    return checked


def _filled(instrument: Instrument, keyed: dict[str, float]) -> tuple[dict[str, float], str | None]:
    """Every item's value, gaps filled; or the id of a subscale left with nothing to fill from."""
    values: dict[str, float] = {}
    for item in instrument.items:
        if item.id in keyed:
            values[item.id] = keyed[item.id]
            continue
        pool = list(keyed.values())
        if instrument.scoring.fill == "subscale_mean" and item.subscale is not None:
            pool = [keyed[i.id] for i in instrument.items_of(item.subscale) if i.id in keyed]
            if not pool:
                return {}, item.subscale
        values[item.id] = sum(pool) / len(pool)
    return values, None


def _normalized(raw: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return rounded((raw - low) / (high - low) * 100, 1)


def _gap_reason(language: str, not_applicable: int, blank: int, limit: int) -> str:
    gaps = []
    if not_applicable:
        gaps.append(labels.plural(language, "reason.not_applicable", not_applicable))
    if blank:
        gaps.append(labels.plural(language, "reason.blank", blank))
    return labels.label(
        language,
        "reason.sentence",
        gaps=labels.label(language, "reason.and").join(gaps),
        limit=labels.plural(language, "reason.limit", limit),
    )
