"""Flags: what in a response, against the client's history, deserves the therapist's eye.

Built in, for every instrument:
- ``drop``: overall at least ``drop_threshold`` points below the baseline of this
  client–therapist pair (on a first visit with a new therapist, the client's own
  baseline with other therapists); its detail names the subscale that dropped the most
  against its own baseline, where past visits recorded their subscales;
- ``low_subscale``: one or more subscales below ``low_subscale_threshold``;
- ``ceiling``: every answer at the top of the scale, which says little (ceiling effects
  are common in alliance measures), so the therapist should ask rather than rejoice;
- ``first_low``: the first time this client, with any therapist, lands in the
  instrument's lowest band (or below ``low_overall_threshold`` if it has no bands),
  each past visit judged by the line of the instrument it was answered on.
An instrument adds its own under ``flags:`` (e.g. the SRS "total below 36").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from . import labels
from .conditions import Facts, evaluate
from .history import HistorySummary
from .language import pick
from .model import Instrument
from .rounding import rounded
from .scoring import Answer, Score


@dataclass(frozen=True)
class FlagSettings:
    drop_threshold: float = 10
    """Points on 0–100 below the baseline that count as a drop."""
    low_subscale_threshold: float = 60
    trend_length: int = 8
    low_overall_threshold: float = 60
    """``first_low`` line for an instrument without bands."""

    def __post_init__(self):
        for name in ("drop_threshold", "low_subscale_threshold", "low_overall_threshold"):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must be between 0 and 100 (points on the 0–100 scale)")
        if not 1 <= self.trend_length <= 8:
            raise ValueError("trend_length must be between 1 and 8 visits")


@dataclass(frozen=True)
class Flag:
    code: str
    detail: dict
    message: Mapping[str, str]
    """One sentence per language."""

    def message_in(self, language: str) -> str:
        return pick(self.message, language)


def raise_flags(
    instrument: Instrument,
    score: Score,
    answers: Mapping[str, Answer | None],
    pair: HistorySummary,
    client: HistorySummary,
    settings: FlagSettings,
) -> list[Flag]:
    raised = [
        flag
        for flag in (
            _drop(score, pair, client, settings),
            _low_subscale(instrument, score, settings),
            _ceiling(score, client),
            _first_low(instrument, score, client, settings),
        )
        if flag is not None
    ]
    facts = Facts(score, answers, changes=changes_of(pair))
    for rule in instrument.flags:
        detail = evaluate(rule.when, facts)
        if detail is not None:
            raised.append(Flag(rule.code, detail, dict(rule.message)))
    return raised


def changes_of(history: HistorySummary) -> dict[str, float | None]:
    return {"previous": history.change_from_previous, "baseline": history.change_from_baseline}


def _messages(key: str, **values) -> dict[str, str]:
    """``key``'s message in every language, numbers in that language's format."""
    return {
        language: labels.label(
            language,
            key,
            **{
                name: labels.number(value, language) if isinstance(value, float) else value
                for name, value in values.items()
            },
        )
        for language in labels.languages()
    }


def _drop(
    score: Score, pair: HistorySummary, client: HistorySummary, settings: FlagSettings
) -> Flag | None:
    against, history = ("pair", pair) if pair.baseline is not None else ("client", client)
    if not score.scored or history.baseline is None:
        return None
    change = history.change_from_baseline
    if -change < settings.drop_threshold:
        return None
    detail = {
        "current": score.overall,
        "baseline": history.baseline,
        "change": change,
        "against": against,
        **_most_dropped(score, history),
    }
    return Flag(
        "drop",
        detail,
        _messages(
            f"flag.drop_{against}", current=score.overall, baseline=history.baseline, drop=-change
        ),
    )


def _most_dropped(score: Score, history: HistorySummary) -> dict:
    """The subscale that fell the most below its own baseline, if any fell."""
    changes = {
        sub_id: rounded(sub.normalized - history.subscale_baselines[sub_id])
        for sub_id, sub in score.subscales.items()
        if sub_id in history.subscale_baselines
    }
    fallen = [sub_id for sub_id, change in changes.items() if change < 0]
    if not fallen:
        return {}
    # Ties go to the subscale listed first in the instrument.
    sub_id = min(fallen, key=lambda key: changes[key])
    return {
        "subscale": sub_id,
        "subscale_baseline": history.subscale_baselines[sub_id],
        "subscale_change": changes[sub_id],
    }


def _low_subscale(instrument: Instrument, score: Score, settings: FlagSettings) -> Flag | None:
    threshold = float(settings.low_subscale_threshold)
    low = {
        sub_id: sub.normalized
        for sub_id, sub in score.subscales.items()
        if sub.normalized < threshold
    }
    if not low:
        return None
    message = {
        language: labels.label(
            language,
            "flag.low_subscale",
            threshold=labels.number(threshold, language),
            subscales=", ".join(
                f"{pick(instrument.subscale(sub_id).title, language)} "
                f"{labels.number(value, language)}/100"
                for sub_id, value in low.items()
            ),
        )
        for language in labels.languages()
    }
    return Flag("low_subscale", {"subscales": low, "threshold": threshold}, message)


def _ceiling(score: Score, client: HistorySummary) -> Flag | None:
    if not (score.scored and score.at_ceiling):
        return None
    streak = client.ceiling_streak
    message = {
        language: labels.plural(language, "flag.ceiling", streak) for language in labels.languages()
    }
    return Flag("ceiling", {"visits_in_a_row": streak}, message)


def _first_low(
    instrument: Instrument, score: Score, client: HistorySummary, settings: FlagSettings
) -> Flag | None:
    line = low_line(instrument, settings)
    if not score.scored or score.overall >= line:
        return None
    # Each past visit is judged by its own instrument's line where that was recorded: the
    # check-in's lowest band ends lower than the pulse's, so a past check-in of 55 was
    # not low, and a pulse of 55 now is the first low.
    if any(
        value < line if low is None else low
        for value, low in zip(client.past_overall, client.past_low, strict=True)
    ):
        return None
    return Flag(
        "first_low",
        {"current": score.overall, "line": line},
        _messages("flag.first_low", current=score.overall),
    )


def low_line(instrument: Instrument, settings: FlagSettings) -> float:
    """Below this (on 0–100) a score is "low": the top of the lowest band, if any."""
    if instrument.bands is None:
        return float(settings.low_overall_threshold)
    end = instrument.bands.ranges[0].end
    if instrument.bands.score == "normalized":
        return end
    low, high = instrument.overall_bounds()
    return (end - low) / (high - low) * 100
