"""The plain-text note Rapport writes onto a client's profile in the booking platform.

The note is one block between ``NOTE_BLOCK_START`` and ``NOTE_BLOCK_END``, each alone on
its line and the same in every language, so a later write replaces exactly Rapport's
block and leaves the therapist's own text alone. No other line can contain a marker:
the client's comment and the therapist's name are flattened to one line and any marker
in them is unbracketed.

A therapist reads it in ten seconds before a visit, so its first line says the one thing
to know (headline.py); then the visit, the overall score, the subscales on one line on
the same 0–100 scale, the trend, what to do next visit and the client's comment.

Platforms cap note length (some in bytes), so the note shrinks to fit ``limit`` by
dropping its least important parts first: the comment's tail, then subscales, the
trend, lower-priority talking points, the date line, the first line's second concern,
the last talking point, the band. The markers, the first line and the overall score
always stay; only when nothing else is left is the first line itself shortened. Text is
only ever cut between words, never inside a word or a character, and a cut is shown
with "…".

A platform may need the same note shorter later (a booking's note shares its limit with
the therapist's own text): ``note_parts`` gives the note's parts as JSON-ready data, kept
with the response, and ``render_parts`` renders them again to any limit, the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import date

from . import labels
from .assessment import Assessment
from .language import pick

NOTE_BLOCK_START = "[Rapport]"
NOTE_BLOCK_END = "[/Rapport]"
ELLIPSIS = "…"
_MARKERS = re.compile("|".join(re.escape(m) for m in (NOTE_BLOCK_END, NOTE_BLOCK_START)), re.I)


@dataclass(frozen=True)
class _Note:
    """The note's parts, and how much of each is kept."""

    overall: str
    overall_short: str
    headline: str | None = None
    """The first line; None in parts stored before notes had one."""
    headline_short: str | None = None
    """The first line naming its first concern only, when it names more."""
    short_headline: bool = False
    headline_words: int | None = None
    """When set, the first line shows only this many words."""
    header: str | None = None
    subscales: tuple[str, ...] = ()
    subscales_inline: bool = False
    """One line for every subscale (parts stored before that have one line each)."""
    trend: str | None = None
    heading: str = ""
    points: tuple[str, ...] = ()
    last_point_words: int | None = None
    """When set, the last kept point shows only this many words."""
    positive: str | None = None
    comment_label: str = ""
    comment_words: tuple[str, ...] = ()
    comment_kept: int = 0
    short_overall: bool = False

    def render(self) -> str:
        lines = [NOTE_BLOCK_START]
        headline = self.headline_short if self.short_headline else self.headline
        if headline:
            words = headline.split()
            kept = len(words) if self.headline_words is None else self.headline_words
            lines.append(_words(words, kept))
        if self.header:
            lines.append(self.header)
        lines.append(self.overall_short if self.short_overall else self.overall)
        if self.subscales_inline and self.subscales:
            lines.append(" · ".join(self.subscales))
        else:
            lines += self.subscales
        if self.trend:
            lines.append(self.trend)
        if self.points:
            lines.append(self.heading)
            *whole, last = self.points
            if self.last_point_words is not None:
                last = _words(last.split(), self.last_point_words)
            lines += [f"- {point}" for point in (*whole, last)]
        elif self.positive:
            lines.append(self.positive)
        if self.comment_kept:
            lines.append(f'{self.comment_label}"{_words(self.comment_words, self.comment_kept)}"')
        lines.append(NOTE_BLOCK_END)
        return "\n".join(lines)


def render_note(
    assessment: Assessment,
    *,
    language: str,
    visit_date: date,
    therapist_name: str | None,
    limit: int | None = None,
    limit_bytes: bool = False,
) -> str:
    """The note in ``language``, at most ``limit`` characters (and, with ``limit_bytes``,
    at most ``limit`` bytes of UTF-8). Raises ``ValueError`` if even the markers, the
    first word of the first line and the overall score do not fit."""
    return _fit(_parts(assessment, language, visit_date, therapist_name), limit, limit_bytes)


def note_parts(
    assessment: Assessment, *, language: str, visit_date: date, therapist_name: str | None
) -> dict:
    """The whole note's parts as JSON-ready data, for :func:`render_parts` later."""
    return asdict(_parts(assessment, language, visit_date, therapist_name))


def render_parts(parts: Mapping, limit: int | None = None, *, limit_bytes: bool = False) -> str:
    """The note :func:`note_parts` described, rendered as :func:`render_note` would: at
    most ``limit`` characters, least important parts dropped first; ``ValueError`` when
    even the markers, the first word of the first line and the overall score do not fit.
    Parts stored by an earlier version (without a first line) render as they did."""
    known = {f.name for f in fields(_Note)}
    values = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in parts.items()
        if name in known
    }
    return _fit(_Note(**values), limit, limit_bytes)


def _fit(full: _Note, limit: int | None, limit_bytes: bool) -> str:
    if limit is None:
        return full.render()
    for candidate in _shrinking(full):
        text = candidate.render()
        if len(text) <= limit and (not limit_bytes or len(text.encode("utf-8")) <= limit):
            return text
    unit = "bytes" if limit_bytes else "characters"
    raise ValueError(
        f"a note cannot fit in {limit} {unit}: the markers, the first line and the overall "
        "score need more"
    )


def _shrinking(note: _Note) -> Iterator[_Note]:
    """The note, then ever shorter versions of it, in the order parts are given up."""
    yield note
    for kept in range(note.comment_kept - 1, -1, -1):
        note = replace(note, comment_kept=kept)
        yield note
    for kept in range(len(note.subscales) - 1, -1, -1):
        note = replace(note, subscales=note.subscales[:kept])
        yield note
    note = replace(note, trend=None)
    yield note
    for kept in range(len(note.points) - 1, 0, -1):
        note = replace(note, points=note.points[:kept])
        yield note
    note = replace(note, header=None)
    yield note
    if note.headline_short:
        note = replace(note, short_headline=True)
        yield note
    if note.points:
        for kept in range(len(note.points[-1].split()) - 1, 0, -1):
            note = replace(note, last_point_words=kept)
            yield note
    note = replace(note, points=(), positive=None)
    yield note
    note = replace(note, short_overall=True)
    yield note
    headline = note.headline_short if note.short_headline else note.headline
    if headline:
        for kept in range(len(headline.split()) - 1, 0, -1):
            yield replace(note, headline_words=kept)


def _parts(
    assessment: Assessment, language: str, visit_date: date, therapist_name: str | None
) -> _Note:
    instrument, score = assessment.instrument, assessment.score

    def label(key: str) -> str:
        return labels.label(language, key)

    colon = label("colon")

    def number(value: float) -> str:
        return labels.number(value, language)

    headline = assessment.headline_in(language)
    headline_short = assessment.headline_in(language, most=1)
    header = " · ".join(
        part
        for part in (
            labels.visit_date(visit_date, language),
            _one_line(therapist_name or ""),
            pick(instrument.title, language),
        )
        if part
    )
    if score.scored:
        overall_short = f"{label('overall')}{colon}{number(score.overall)}/100"
        band_label = assessment.band_label_in(language)
        band = f" · {band_label}" if band_label else ""
        overall = overall_short + band
        subscales = tuple(
            f"{pick(instrument.subscale(sub_id).title, language)} {number(sub.normalized)}/100"
            for sub_id, sub in score.subscales.items()
        )
    else:
        overall_short = f"{label('overall')}{colon}{label('not_scored')}"
        # Why, unless the first line already says it.
        reason = score.reason_in(language)
        overall = overall_short if headline == reason else f"{overall_short} ({reason})"
        subscales = ()
    comment_words = tuple(_one_line(assessment.comment or "").split())
    return _Note(
        overall=overall,
        overall_short=overall_short,
        headline=_one_line(headline),
        headline_short=_one_line(headline_short) if headline_short != headline else None,
        header=header,
        subscales=subscales,
        subscales_inline=True,
        trend=_trend(assessment, language),
        heading=label("next_visit") + colon.rstrip(),
        points=tuple(assessment.talking_points_in(language)),
        positive=assessment.positive_in(language),
        comment_label=label("comment") + colon,
        comment_words=comment_words,
        comment_kept=len(comment_words),
    )


def _trend(assessment: Assessment, language: str) -> str | None:
    if len(assessment.trend) < 2:
        return None
    changes = [
        labels.label(language, key, change=labels.change(value, language))
        for key, value in (
            ("since_previous", assessment.change_from_previous),
            ("since_baseline", assessment.change_from_baseline),
        )
        if value is not None
    ]
    line = (
        f"{labels.label(language, 'trend')}{labels.label(language, 'colon')}{assessment.sparkline}"
    )
    return f"{line} {', '.join(changes)}" if changes else line


def _one_line(text: str) -> str:
    """Client or platform text made safe for one line of the note."""
    text = "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)
    # Until none is left: removing the brackets of one marker can make another, as in
    # "[[/Rapport]]" (each pass makes the text shorter, so this ends).
    while _MARKERS.search(text):
        text = _MARKERS.sub(lambda match: match.group(0)[1:-1], text)
    return " ".join(text.split())


def _words(words: list[str] | tuple[str, ...], kept: int) -> str:
    shown = " ".join(words[:kept])
    return shown if kept >= len(words) else shown + ELLIPSIS
