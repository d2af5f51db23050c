"""The note read as a therapist reads it before a visit: the first line, then a glance
at the scores. Five answer patterns, in every language; what the first line says, not
its exact wording (the words come from the instrument file and the locale)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from questionnaires import FlagSettings, PastResult, assess, render_note, score
from questionnaires.labels import label
from questionnaires.language import pick

LANGUAGES = ("en", "fr", "es")
HIGH = {"listened": 5, "shared-aims": 4, "plan": 4, "pressure": 5, "held-back": 1,
        "boundaries": 5, "confidential": 5, "safe": 4}
CEILING = {"listened": 5, "shared-aims": 5, "plan": 5, "pressure": 5, "held-back": 1,
           "boundaries": 5, "confidential": 5, "safe": 5}
ONE_LOW = CEILING | {"held-back": 4}  # "mostly true" that they kept something to themselves
DROPPED = CEILING | {"plan": 4, "pressure": 4, "held-back": 2, "boundaries": 4,
                     "confidential": 4, "safe": 4}
LOW_GOALS = CEILING | {"listened": 3, "shared-aims": 3}  # Goals 50, overall 87.5
BASELINE = {"goal": 100.0, "task": 87.5, "bond": 100.0}  # three visits at 95 overall
WORKING_WELL = {"en": "Working well", "fr": "Bonne entente", "es": "Buena sintonía"}
NUMBER = re.compile(r"\d+(?:[.,]\d)?")


def read(checkin, answers, language, history=(), settings=None):
    """The note's lines, the way the therapist sees them."""
    start = datetime(2026, 9, 1, 15, tzinfo=UTC)
    past = [PastResult(start + timedelta(weeks=week), "T-1", "rapport-checkin", overall, subs)
            for week, (overall, subs) in enumerate(history)]
    assessment = assess(checkin, score(checkin, answers), answers, "Shoulders still tight.",
                        past, past, settings, language)
    note = render_note(assessment, language=language, visit_date=date(2026, 11, 25),
                       therapist_name="Dana Ruiz")
    return note.splitlines()[1:-1], assessment


def attention(language) -> str:
    return label(language, "headline.attention", concerns="").strip()


def subscale_title(checkin, sub_id, language):
    return pick(checkin.subscale(sub_id).title, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_all_high_reads_as_going_well_and_nothing_else(checkin, language):
    lines, assessment = read(checkin, HIGH, language)

    assert lines[0] == label(language, "headline.going_well")
    assert WORKING_WELL[language] in lines[2]
    assert assessment.positive in lines  # and the one thing to keep doing
    assert not any(line.startswith("- ") for line in lines)


@pytest.mark.parametrize("language", LANGUAGES)
def test_all_at_the_ceiling_asks_rather_than_reads_as_perfect(checkin, language):
    lines, _ = read(checkin, CEILING, language)

    assert lines[0] == label(language, "headline.ceiling")
    assert lines[0] != label(language, "headline.going_well")
    assert WORKING_WELL[language] not in "\n".join(lines)
    assert any(line.startswith("- ") for line in lines)  # an open question to ask


@pytest.mark.parametrize("language", LANGUAGES)
def test_one_low_answer_is_named_in_words_first(checkin, language):
    lines, _ = read(checkin, ONE_LOW, language)

    held_back = checkin.item("held-back")
    assert lines[0].startswith(attention(language))
    assert pick(held_back.concern, language) in lines[0]
    assert "(2/5)" in lines[0]  # 4 to "I kept something to myself" is 2 once reversed
    assert WORKING_WELL[language] not in lines[2]  # 90.6 overall, but not "working well"
    speak_up = next(rule for rule in checkin.talking_points if rule.when.target == "held-back")
    assert lines[lines.index(next(line for line in lines if line.startswith("- ")))] == (
        f"- {pick(speak_up.text, language)}")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_drop_names_how_much_and_the_area_that_fell_most(checkin, language):
    lines, assessment = read(checkin, DROPPED, language, history=[(95.0, BASELINE)] * 3)

    trust, goals = (subscale_title(checkin, sub, language) for sub in ("bond", "goal"))
    assert lines[0].startswith(attention(language))
    assert "13,7" in lines[0] or "13.7" in lines[0]
    assert trust in lines[0] and goals not in lines[0]  # bond fell 25, goals not at all
    assert WORKING_WELL[language] not in lines[2]
    points = [line[2:] for line in lines if line.startswith("- ")]
    revisit_goals = pick(next(rule.text for rule in checkin.talking_points
                              if rule.id == "goals-low"), language)
    assert revisit_goals not in points  # goals are the best score here
    reassure = pick(next(rule.text for rule in checkin.talking_points
                         if rule.id == "bond-low"), language)
    assert points[0] == reassure
    assert assessment.flags[0].detail["subscale"] == "bond"


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_low_subscale_under_a_high_overall_is_the_first_thing_said(checkin, language):
    lines, _ = read(checkin, LOW_GOALS, language)

    goals = subscale_title(checkin, "goal", language)
    assert lines[0].startswith(attention(language))
    assert f"{goals} 50/100" in lines[0]
    assert checkin.subscale("goal").long_in(language) in lines[0]
    assert "87" in lines[2] and WORKING_WELL[language] not in lines[2]
    # Sub-scores on the overall's scale, with no ".0".
    assert lines[3].startswith(f"{goals} 50/100 · ")
    assert all(part.endswith("/100") for part in lines[3].split(" · "))
    assert not re.search(r"[.,]0\b", lines[3])


def test_low_is_the_clinics_line(checkin):
    # Goals 50 is not low for a clinic whose line is 50: then it is going well.
    lines, _ = read(checkin, LOW_GOALS, "en", settings=FlagSettings(low_subscale_threshold=50))

    assert not lines[0].startswith("Needs attention")
    assert "Working well" in lines[2]


def test_the_most_serious_two_come_first_and_the_rest_are_counted(checkin):
    answers = CEILING | {"boundaries": 2, "plan": 3, "pressure": 3, "safe": 3}

    lines, _ = read(checkin, answers, "en")

    # Trust and safety (2, 5, 3 → 58.3) is low, and boundaries (25) lower still, so named;
    # the approach (3, 3, 5 → 66.7) is not low, its plan and pressure answers are (50).
    assert lines[0] == (
        "Needs attention: boundaries around touch or draping not fully respected (2/5); "
        "did not know what the session would involve (3/5) (+3 more)"
    )


def test_a_point_still_to_try_is_not_hidden_behind_going_well(pulse):
    answers = {"focus": 9, "approach": 9, "speak-up": 6, "respect": 9}  # 6 is not low, yet…

    assessment = assess(pulse, score(pulse, answers), answers)

    assert assessment.headline_in("en") == "Going well; one thing to try below"
    assert assessment.positive is None
