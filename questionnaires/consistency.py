"""Checks that span an instrument file: references, languages, ids, bands, thresholds.

Each problem is ``(path, message)`` where ``path`` is a tuple such as
``("items", 3, "text", "fr")``, so the admin is told exactly where to look.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .errors import format_path
from .model import BUILT_IN_FLAGS, Condition, Instrument, Texts

Problem = tuple[tuple, str]
RESERVED_ITEM_IDS = {"comment"}  # the survey form's free-text field
PLACEHOLDER = re.compile(r"<<[^<>]*>>|paste the licensed wording here", re.IGNORECASE)
"""The mark of a text the licensed templates leave for the clinic to fill in:
``<<WAI-SR item 1 — paste the licensed wording here>>``. A copy still holding one would
put the placeholder in front of clients."""


def problems(instrument: Instrument) -> list[Problem]:
    return [
        *_language_problems(instrument),
        *_placeholder_problems(instrument),
        *_id_problems(instrument),
        *_label_problems(instrument),
        *_scoring_problems(instrument),
        *_band_problems(instrument),
        *_rule_problems(instrument),
    ]


def _localized(instrument: Instrument) -> Iterator[tuple[tuple, Texts]]:
    for name in ("title", "intro", "positive", "comment_question"):
        if getattr(instrument, name) is not None:
            yield (name,), getattr(instrument, name)
    for value, label in instrument.scale.labels.items():
        yield ("scale", "labels", value), label
    if instrument.scale.not_applicable is not None:
        yield ("scale", "not_applicable"), instrument.scale.not_applicable
    for i, subscale in enumerate(instrument.subscales):
        yield ("subscales", i, "title"), subscale.title
        if subscale.long_title is not None:
            yield ("subscales", i, "long_title"), subscale.long_title
    for i, item in enumerate(instrument.items):
        yield ("items", i, "text"), item.text
        for value, label in (item.labels or {}).items():
            yield ("items", i, "labels", value), label
        if item.concern is not None:
            yield ("items", i, "concern"), item.concern
    for i, band in enumerate(instrument.bands.ranges if instrument.bands else ()):
        yield ("bands", "ranges", i, "label"), band.label
    for i, rule in enumerate(instrument.talking_points):
        yield ("talking_points", i, "text"), rule.text
    for i, flag in enumerate(instrument.flags):
        yield ("flags", i, "message"), flag.message


THERAPIST_FACING = ("talking_points", "flags", "positive", "bands", "long_title", "concern")
"""Parts only the therapist reads (in the note), in Rapport's own words rather than the
instrument's: they may carry languages beyond `languages`, so an instrument licensed in
one language still gives a French or Spanish clinic its talking points in its language.
A part is named by its path's first field (``talking_points``) or, inside a subscale or
an item, by its own (``items[4].concern``)."""


def _language_problems(instrument: Instrument) -> Iterator[Problem]:
    languages = instrument.languages
    for i, language in enumerate(languages):
        if language in languages[:i]:
            yield ("languages", i), f"'{language}' is listed twice"
    listed = ", ".join(dict.fromkeys(languages))
    for path, texts in _localized(instrument):
        for language in dict.fromkeys(languages):
            if language not in texts:
                yield (
                    (*path, language),
                    f"missing: every language in `languages` ({listed}) needs this text",
                )
        if path[0] in THERAPIST_FACING or path[-1] in THERAPIST_FACING:
            continue
        for language in texts:
            if language not in languages:
                yield (*path, language), f"'{language}' is not in `languages` ({listed})"


def _placeholder_problems(instrument: Instrument) -> Iterator[Problem]:
    for path, texts in _localized(instrument):
        for language, text in texts.items():
            found = PLACEHOLDER.search(text)
            if found:
                yield (
                    (*path, language),
                    f"still holds the template's placeholder '{found.group(0)}': replace it "
                    "with the licensed wording",
                )


def _duplicates(where: tuple, ids: list[str], field: str = "id") -> Iterator[Problem]:
    for i, value in enumerate(ids):
        if value in ids[:i]:
            first = format_path((*where, ids.index(value)))
            yield (*where, i, field), f"'{value}' is already used by {first}"


def _id_problems(instrument: Instrument) -> Iterator[Problem]:
    subscale_ids = [sub.id for sub in instrument.subscales]
    yield from _duplicates(("subscales",), subscale_ids)
    yield from _duplicates(("items",), [item.id for item in instrument.items])
    for i, item in enumerate(instrument.items):
        if item.id in RESERVED_ITEM_IDS:
            yield ("items", i, "id"), f"'{item.id}' is reserved for the free-text answer"
        if item.subscale is not None and item.subscale not in subscale_ids:
            yield ("items", i, "subscale"), _unknown("subscale", item.subscale, subscale_ids)
    for i, sub in enumerate(instrument.subscales):
        if not instrument.items_of(sub.id):
            yield ("subscales", i), f"subscale '{sub.id}' has no items"


def _label_problems(instrument: Instrument) -> Iterator[Problem]:
    scale = instrument.scale
    labelled = [(("scale", "labels"), scale.labels)]
    labelled += [
        (("items", i, "labels"), item.labels)
        for i, item in enumerate(instrument.items)
        if item.labels is not None
    ]
    for path, labels in labelled:
        for value in labels:
            if not scale.min <= value <= scale.max:
                yield (*path, value), f"{value} is not on the scale {scale.min}–{scale.max}"
        for end in (scale.min, scale.max):
            if end not in labels:
                yield path, f"label both ends of the scale: {end} has no label"


def _scoring_problems(instrument: Instrument) -> Iterator[Problem]:
    count, scoring = len(instrument.items), instrument.scoring
    if scoring.max_missing >= count:
        yield (
            ("scoring", "max_missing"),
            (f"must be below the number of items ({count}): a response needs at least one answer"),
        )
    if instrument.scale.allows_not_applicable and scoring.max_missing == 0:
        yield (
            ("scoring", "max_missing"),
            (
                "the scale offers 'does not apply' but max_missing is 0, so any such answer "
                "would leave the response unscored; set how many can be filled in"
            ),
        )


def _band_problems(instrument: Instrument) -> Iterator[Problem]:
    if instrument.bands is None:
        return
    ranges = instrument.bands.ranges
    yield from _duplicates(("bands", "ranges"), [band.id for band in ranges])
    low, high = (
        (0.0, 100.0) if instrument.bands.score == "normalized" else instrument.overall_bounds()
    )
    if ranges[0].start != low:
        yield ("bands", "ranges", 0, "from"), f"must be {low:g}, the lowest possible score"
    for i in range(1, len(ranges)):
        if ranges[i].start != ranges[i - 1].end:
            yield (
                ("bands", "ranges", i, "from"),
                (
                    f"must be {ranges[i - 1].end:g}, where the band before ends "
                    "(bands are in order, with no gap and no overlap)"
                ),
            )
    if ranges[-1].end != high:
        yield (
            ("bands", "ranges", len(ranges) - 1, "to"),
            (f"must be {high:g}, the highest possible score"),
        )


def _rule_problems(instrument: Instrument) -> Iterator[Problem]:
    custom_codes = [flag.code for flag in instrument.flags]
    yield from _duplicates(("flags",), custom_codes, "code")
    yield from _duplicates(("talking_points",), [rule.id for rule in instrument.talking_points])
    for i, flag in enumerate(instrument.flags):
        if flag.code in BUILT_IN_FLAGS:
            yield ("flags", i, "code"), f"'{flag.code}' is a built-in flag; choose another code"
        if flag.when.subject == "flag":
            yield ("flags", i, "when", "flag"), "a flag cannot depend on another flag"
        yield from _condition_problems(instrument, flag.when, ("flags", i, "when"), ())
    codes = [*BUILT_IN_FLAGS, *custom_codes]
    for i, rule in enumerate(instrument.talking_points):
        yield from _condition_problems(instrument, rule.when, ("talking_points", i, "when"), codes)


def _condition_problems(
    instrument: Instrument, condition: Condition, path: tuple, codes: tuple | list
) -> Iterator[Problem]:
    subject, target = condition.subject, condition.target
    subscale_ids = [sub.id for sub in instrument.subscales]
    if subject == "flag" and codes and target not in codes:
        yield (*path, "flag"), _unknown("flag", target, codes)
    if condition.subscale is not None and condition.subscale not in subscale_ids:
        yield (*path, "subscale"), _unknown("subscale", condition.subscale, subscale_ids)
    if subject == "subscale" and target not in subscale_ids:
        yield (*path, "subscale"), _unknown("subscale", target, subscale_ids)
        return
    if subject == "item" and target not in [item.id for item in instrument.items]:
        yield (*path, "item"), _unknown("item", target, [item.id for item in instrument.items])
        return
    low, high = _possible_values(instrument, condition)
    for name, line in condition.comparisons:
        if not low <= line <= high:
            yield (
                (*path, name),
                (
                    f"{line:g} is outside the possible values {low:g}–{high:g}, "
                    "so this condition is always or never true"
                ),
            )


def _possible_values(instrument: Instrument, condition: Condition) -> tuple[float, float]:
    if condition.subject in ("item", "any_item"):
        return instrument.scale.min, instrument.scale.max
    if condition.subject == "change":
        return -100.0, 100.0
    if not condition.raw:
        return 0.0, 100.0
    if condition.subject == "subscale":
        return instrument.subscale_bounds(condition.target)
    return instrument.overall_bounds()


def _unknown(kind: str, value: str | None, known: list | tuple) -> str:
    listed = ", ".join(known) if known else "none defined"
    return f"no {kind} '{value}' (known: {listed})"
