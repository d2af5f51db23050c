"""One response, assessed: score, history, flags and talking points together.

``assess`` is what the write-back job calls; ``Assessment.to_dict()`` is what Rapport
stores and sends (the generic platform's ``client.alliance_updated`` payload), and
``note.render_note`` turns it into the text written onto the client's profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import labels
from .conditions import Facts
from .flags import Flag, FlagSettings, changes_of, low_line, raise_flags
from .history import HistorySummary, PastResult, summarize
from .language import pick
from .model import Instrument, TalkingPointRule
from .scoring import Answer, Score
from .talking_points import localized_points, matching_rules


@dataclass(frozen=True)
class Assessment:
    instrument: Instrument
    score: Score
    language: str
    """The clinic's language; each text falls back to English where it is missing."""
    pair: HistorySummary
    """This client with this therapist: the trend and changes shown."""
    client: HistorySummary
    """This client with every therapist."""
    flags: list[Flag]
    matched_rules: list[TalkingPointRule]
    """Every matching talking-point rule, most important first."""
    comment: str | None
    is_low: bool = False
    """Below this instrument's line for a low score (the top of its lowest band): what a
    later visit's ``first_low`` looks back on (``PastResult.low``)."""

    @property
    def trend(self) -> list[float]:
        return list(self.pair.trend)

    @property
    def sparkline(self) -> str:
        return self.pair.sparkline

    @property
    def change_from_previous(self) -> float | None:
        return self.pair.change_from_previous

    @property
    def change_from_baseline(self) -> float | None:
        return self.pair.change_from_baseline

    @property
    def talking_points(self) -> list[str]:
        return self.talking_points_in(self.language)

    def talking_points_in(self, language: str) -> list[str]:
        return localized_points(self.matched_rules, language)

    @property
    def at_ceiling(self) -> bool:
        return any(flag.code == "ceiling" for flag in self.flags)

    def band_label_in(self, language: str) -> str | None:
        """The band's label, except when every answer is at the top of the scale: then
        the note says so, and to ask, rather than showing the top band as "perfect"
        (ceiling effects are common; see CLINICAL.md)."""
        if self.at_ceiling:
            return labels.label(language, "ceiling_band")
        return pick(self.score.band.label, language) if self.score.band else None

    @property
    def positive(self) -> str | None:
        return self.positive_in(self.language)

    def positive_in(self, language: str) -> str | None:
        """The instrument's "all is well" line, only when nothing is flagged or suggested."""
        if (
            self.flags
            or self.matched_rules
            or self.instrument.positive is None
            or not self.score.scored
        ):
            return None
        return pick(self.instrument.positive, language)

    def to_dict(self) -> dict:
        """A JSON-ready summary in the assessment's language."""
        score = self.score.to_dict(self.language)
        band = score["band"]
        if band is not None:
            band = {**band, "label": self.band_label_in(self.language)}
        return {
            "instrument": score["instrument"],
            "language": self.language,
            "scored": score["scored"],
            "reason": score["reason"],
            "overall": score["overall"],
            "overall_raw": score["overall_raw"],
            "subscales": score["subscales"],
            "band": band,
            "trend": self.trend,
            "sparkline": self.sparkline,
            "change": {
                "from_previous": self.change_from_previous,
                "from_baseline": self.change_from_baseline,
                "baseline": self.pair.baseline,
            },
            "client": {
                "trend": list(self.client.trend),
                "from_previous": self.client.change_from_previous,
                "from_baseline": self.client.change_from_baseline,
            },
            "flags": [
                {
                    "code": flag.code,
                    "detail": flag.detail,
                    "message": flag.message_in(self.language),
                }
                for flag in self.flags
            ],
            "talking_points": self.talking_points,
            "positive": self.positive,
            "comment": self.comment,
        }


def assess(
    instrument: Instrument,
    score: Score,
    answers: Mapping[str, Answer | None],
    comment: str | None = None,
    history_client: Iterable[PastResult] = (),
    history_pair: Iterable[PastResult] = (),
    settings: FlagSettings | None = None,
    language: str = "en",
) -> Assessment:
    """Put one scored response in context. ``history_*`` hold earlier visits only (never
    the current one); ``history_pair`` is the subset with the current therapist."""
    if (score.instrument_id, score.instrument_version) != (instrument.id, instrument.version):
        raise ValueError(
            f"score is for {score.instrument_id} v{score.instrument_version}, "
            f"not {instrument.id} v{instrument.version}"
        )
    settings = settings or FlagSettings()
    pair = summarize(history_pair, score.overall, score.at_ceiling, settings.trend_length)
    client = summarize(history_client, score.overall, score.at_ceiling, settings.trend_length)
    flags = raise_flags(instrument, score, answers, pair, client, settings)
    facts = Facts(
        score, answers, changes=changes_of(pair), flags={flag.code: flag.detail for flag in flags}
    )
    return Assessment(
        instrument=instrument,
        score=score,
        language=language,
        pair=pair,
        client=client,
        flags=flags,
        matched_rules=matching_rules(instrument, facts),
        comment=(comment or "").strip() or None,
        is_low=score.scored and score.overall < low_line(instrument, settings),
    )
