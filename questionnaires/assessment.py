"""One response, assessed: score, history, flags and talking points together.

``assess`` is what the write-back job calls; ``Assessment.to_dict()`` is what Rapport
stores and sends (the generic platform's ``client.alliance_updated`` payload), and
``note.render_note`` turns it into the text written onto the client's profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import headline, labels
from .concerns import LowAnswer, low_answers, low_subscales
from .conditions import Facts
from .flags import Flag, FlagSettings, changes_of, low_line, raise_flags
from .history import HistorySummary, PastResult, summarize
from .language import pick
from .model import Instrument, TalkingPointRule
from .rounding import rounded
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
    low_answers: tuple[LowAnswer, ...] = ()
    """Answers below the clinic's line (``FlagSettings.low_subscale_threshold``), lowest
    first (see concerns.py)."""
    low_subscales: tuple[str, ...] = ()
    """Subscales below the same line, lowest first."""

    @property
    def has_low(self) -> bool:
        return bool(self.low_answers or self.low_subscales)

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

    @property
    def band_caveat(self) -> str | None:
        """Why the band's own label is not shown: ``ceiling`` when every answer is at the
        top of the scale (ceiling effects are common, see CLINICAL.md: the note says to
        ask rather than "perfect"); and in the top band while the note's first line says
        something needs attention (the note never says "working well" then),
        ``dropping`` when that is a drop alone, else ``weak_spot``."""
        if self.at_ceiling:
            return "ceiling"
        bands, band = self.instrument.bands, self.score.band
        if band is None or len(bands.ranges) < 2 or band != bands.ranges[-1]:
            return None
        flagged = {flag.code for flag in self.flags} - {"ceiling"}
        if self.has_low or flagged - {"drop"}:
            return "weak_spot"
        return "dropping" if flagged else None

    def band_label_in(self, language: str) -> str | None:
        """The band's label, or what the note says instead (see ``band_caveat``)."""
        caveat = self.band_caveat
        if caveat is not None:
            return labels.label(language, f"{caveat}_band")
        return pick(self.score.band.label, language) if self.score.band else None

    def headline_in(self, language: str, most: int = headline.MAX_CONCERNS) -> str:
        """The note's first line: the one thing to know, naming at most ``most`` concerns
        (see headline.py)."""
        return headline.first_line(self, language, most)

    @property
    def positive(self) -> str | None:
        return self.positive_in(self.language)

    def positive_in(self, language: str) -> str | None:
        """The instrument's "all is well" line, only when nothing is flagged, low or
        suggested."""
        if (
            self.flags
            or self.has_low
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
            band = {**band, "label": self.band_label_in(self.language),
                    "caveat": self.band_caveat}
        return {
            "instrument": score["instrument"],
            "language": self.language,
            "headline": self.headline_in(self.language),
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
            "low_answers": [
                {"item": low.item_id, "answer": low.given, "value": low.value,
                 "normalized": rounded(low.normalized)}
                for low in self.low_answers
            ],
            "low_subscales": list(self.low_subscales),
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
    line = float(settings.low_subscale_threshold)
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
        low_answers=low_answers(instrument, answers, line),
        low_subscales=low_subscales(score, line),
    )
