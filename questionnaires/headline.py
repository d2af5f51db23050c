"""The note's first line: the one thing a therapist skimming the note should know.

The rules, in order (README.md, "The note's first line", says the same for authors):

1. Something needs attention: "Needs attention: " and at most two concerns, the most
   serious first, then how many more there are. Concerns are
   - a low subscale: its long name, short name and score ("agreeing on what the visits
     are for (Goals 50/100)");
   - a low answer, unless it is in a low subscale and no lower than it (the subscale
     says it then): the item's ``concern`` and the answer on its scale, after reverse
     keying ("felt unable to say something (2/5)");
   both ordered by their 0–100 value, lowest first (a subscale before an answer); then
   - a drop: by how much, and the subscale that fell the most ("down 13.7 points since
     the first visits, most in Trust and safety (100 → 75)");
   - a first low score; then the instrument's own flags, by their message.
   "Low" is below the clinic's line (see concerns.py).
2. Not scored, with nothing low among the answers given: why, in the sentence the score
   gives ("7 answers were left blank; …, so this response is not scored.").
3. Every answer at the top of the scale: ask what could be better, rather than "perfect".
4. Otherwise it is going well: "Going well, no concerns", or, when a talking point still
   applies, "Going well; one thing to try below".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import labels
from .language import pick

if TYPE_CHECKING:
    from .assessment import Assessment

MAX_CONCERNS = 2
SAID_ELSEWHERE = ("low_subscale", "ceiling")
"""Built-in flags whose concern the low subscales and the ceiling line already state."""


def first_line(assessment: Assessment, language: str, most: int = MAX_CONCERNS) -> str:
    """The first line, naming at most ``most`` concerns (a note short of room names one)."""
    concerns = [*_low(assessment, language), *_flagged(assessment, language)]
    if concerns:
        shown = labels.label(language, "headline.and").join(concerns[:most])
        more = len(concerns) - most
        if more > 0:
            shown += " " + labels.plural(language, "headline.more", more)
        return labels.label(language, "headline.attention", concerns=shown)
    if not assessment.score.scored:
        return assessment.score.reason_in(language)
    if assessment.at_ceiling:
        return labels.label(language, "headline.ceiling")
    points = len(assessment.talking_points_in(language))
    if points:
        return labels.plural(language, "headline.going_well_with", points)
    return labels.label(language, "headline.going_well")


def _low(assessment: Assessment, language: str) -> list[str]:
    """Low subscales and the low answers outside them, lowest first."""
    instrument, score = assessment.instrument, assessment.score
    found: list[tuple[float, int, str]] = []
    for sub_id in assessment.low_subscales:
        subscale, value = instrument.subscale(sub_id), score.subscales[sub_id].normalized
        text = labels.label(language, "headline.low_area", area=subscale.long_in(language),
                            name=pick(subscale.title, language),
                            score=labels.number(value, language))
        found.append((value, 0, text))
    positions = {item.id: number for number, item in enumerate(instrument.items, 1)}
    for low in assessment.low_answers:
        item = instrument.item(low.item_id)
        if (item.subscale in assessment.low_subscales
                and low.normalized >= score.subscales[item.subscale].normalized):
            continue  # its low subscale says it; an answer below that is said on its own
        what = (pick(item.concern, language) if item.concern
                else labels.label(language, "headline.answer", number=positions[item.id]))
        text = labels.label(language, "headline.low_answer", what=what, value=low.value,
                            max=instrument.scale.max)
        found.append((low.normalized, 1, text))
    return [text for _, _, text in sorted(found, key=lambda entry: entry[:2])]


def _flagged(assessment: Assessment, language: str) -> list[str]:
    found = []
    for flag in assessment.flags:
        if flag.code == "drop":
            found.append(_drop(assessment, flag.detail, language))
        elif flag.code == "first_low":
            found.append(labels.label(language, "headline.first_low",
                                      overall=labels.number(flag.detail["current"], language)))
        elif flag.code not in SAID_ELSEWHERE:
            found.append(flag.message_in(language).rstrip(". "))
    return found


def _drop(assessment: Assessment, detail: dict, language: str) -> str:
    text = labels.label(language, f"headline.drop_{detail['against']}",
                        drop=labels.number(-detail["change"], language))
    sub_id = detail.get("subscale")
    if sub_id is None:
        return text
    now = assessment.score.subscales[sub_id].normalized
    return text + labels.label(
        language, "headline.drop_most",
        area=pick(assessment.instrument.subscale(sub_id).title, language),
        before=labels.number(detail["subscale_baseline"], language),
        now=labels.number(now, language))
