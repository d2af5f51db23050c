"""Histories a therapist would recognise, and the flags and talking points they produce."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from questionnaires import FlagSettings, assess, score

REVISIT_GOALS = (
    "Revisit goals together: before you start, ask what they want from these visits now "
    "and agree on the plan."
)
EXPLAIN_PLAN = (
    "Before you begin, explain your plan for the session (which areas, which techniques) and "
    "agree it together."
)
PULSE_PLAN_AND_PRESSURE = (
    "Explain your plan before you begin, and check pressure aloud in the first few minutes."
)
CHECK_PRESSURE = (
    'Check pressure aloud early and again mid-session, and invite them to say "lighter" or '
    '"deeper" at any point.'
)
OPEN_QUESTION = (
    'Ask one open question, such as "What is one thing I could do differently next time?"'
)
ASK_LAST_VISIT = "Open the next visit by asking how the last one felt and what they would change."


def assessed(instrument, answers, **context):
    return assess(instrument, score(instrument, answers), answers, **context)


def test_steady_high_raises_ceiling_and_asks_an_open_question(checkin, visits):
    top = {item.id: 5 for item in checkin.items} | {"held-back": 1}
    history = visits(100.0, 100.0, 100.0, ceiling=True)

    result = assessed(checkin, top, history_client=history, history_pair=history)

    assert [flag.code for flag in result.flags] == ["ceiling"]
    assert result.flags[0].detail == {"visits_in_a_row": 4}
    assert result.flags[0].message_in("en") == (
        "Every answer at the top of the scale, 4 visits in a row."
    )
    assert result.talking_points == [OPEN_QUESTION]
    assert result.positive is None
    assert result.sparkline == "████"


def test_drop_of_12_with_no_area_on_record_asks_what_changed(pulse, visits):
    history = visits(85.0, 84.0, 84.5)  # baseline 84.5
    answers = {"focus": 8, "approach": 7, "speak-up": 7, "respect": 7}  # 29/40 → 72.5

    result = assessed(pulse, answers, history_client=history, history_pair=history)

    assert result.score.overall == 72.5
    assert result.change_from_baseline == -12.0
    assert result.change_from_previous == -12.0
    assert [flag.code for flag in result.flags] == ["drop"]
    assert result.flags[0].detail == {
        "current": 72.5,
        "baseline": 84.5,
        "change": -12.0,
        "against": "pair",
    }
    assert result.flags[0].message_in("fr") == (
        "Global 72,5 : 12 points de moins qu'aux premières visites de ce suivi (84,5)."
    )
    # These visits recorded no subscales: no area can be named, so none is (goals least).
    assert result.talking_points == [ASK_LAST_VISIT]


def test_drop_threshold_is_configurable(pulse, visits):
    history = visits(85.0, 84.0, 84.5)
    answers = {"focus": 8, "approach": 7, "speak-up": 7, "respect": 7}

    result = assessed(
        pulse, answers, history_pair=history, settings=FlagSettings(drop_threshold=12.5)
    )

    assert result.flags == []
    assert result.positive == "All good: keep asking how the pressure feels and what they need."


def test_low_task_subscale_suggests_explaining_the_plan(checkin):
    answers = {
        "listened": 5,
        "shared-aims": 5,
        "plan": 2,
        "pressure": 3,
        "held-back": 2,
        "boundaries": 5,
        "confidential": 5,
        "safe": 5,
    }

    result = assessed(checkin, answers)

    # task (2 + 3 + reversed 2 → 4) / 3 = 3 → 50.0; overall 34/8 = 4.25 → 81.3
    assert [flag.code for flag in result.flags] == ["low_subscale"]
    assert result.flags[0].detail == {"subscales": {"task": 50.0}, "threshold": 60.0}
    assert result.flags[0].message_in("es") == "Por debajo de 60: Enfoque 50/100."
    # The plan answered 2 and the pressure 3: both low, the plan the lower.
    assert result.talking_points == [EXPLAIN_PLAN, CHECK_PRESSURE]
    assert result.talking_points_in("fr")[0] == (
        "Avant de commencer, expliquez votre plan pour la séance (quelles zones, quelles "
        "techniques) et validez-le ensemble."
    )


def test_low_subscale_threshold_is_configurable(checkin):
    answers = {
        "listened": 5,
        "shared-aims": 5,
        "plan": 2,
        "pressure": 3,
        "held-back": 2,
        "boundaries": 5,
        "confidential": 5,
        "safe": 5,
    }

    result = assessed(checkin, answers, settings=FlagSettings(low_subscale_threshold=50))

    assert result.flags == []


def test_first_low_score_with_a_new_therapist(pulse, visits):
    client = visits(85.0, 80.0, therapist="T-9")  # high with someone else, none with T-1
    answers = {"focus": 4, "approach": 5, "speak-up": 6, "respect": 5}  # 20/40 → 50.0

    result = assessed(pulse, answers, history_client=client, history_pair=[])

    codes = [flag.code for flag in result.flags]
    assert codes == ["drop", "low_subscale", "first_low"]
    drop = result.flags[0]
    assert drop.detail["against"] == "client"
    assert drop.message_in("en") == (
        "Overall 50 is 32.5 points below this client's first visits with other therapists (82.5)."
    )
    assert result.flags[2].message_in("en") == "First time this client has scored this low (50)."
    # The drop and the first low share one text: it counts once. Then the weakest areas,
    # goals (40) before the approach (50); three points at most.
    assert result.talking_points == [ASK_LAST_VISIT, REVISIT_GOALS, PULSE_PLAN_AND_PRESSURE]
    assert result.trend == [50.0]
    assert result.change_from_baseline is None


def test_low_again_is_not_first_low(pulse, visits):
    client = visits(55.0, 80.0)
    answers = {"focus": 4, "approach": 5, "speak-up": 6, "respect": 5}

    result = assessed(pulse, answers, history_client=client, history_pair=client)

    assert "first_low" not in [flag.code for flag in result.flags]


def test_a_past_visit_is_judged_low_by_its_own_instruments_line(pulse, visits):
    # 55 on the check-in was "some concerns" (its lowest band ends at 50); 50 on the
    # pulse (lowest band up to 60) is this client's first low score.
    client = [replace(past, low=False) for past in visits(55.0, 80.0)]
    answers = {"focus": 4, "approach": 5, "speak-up": 6, "respect": 5}  # 50.0

    result = assessed(pulse, answers, history_client=client, history_pair=client)

    assert "first_low" in [flag.code for flag in result.flags]
    assert result.is_low


def test_a_past_low_on_another_instrument_keeps_a_later_low_from_being_first(
    checkin, visits
):
    # 58 on the pulse was low there (below 60); 31.3 on the check-in is low again.
    client = [replace(past, low=True) for past in visits(58.0, instrument="rapport-pulse")]
    answers = {item.id: 2 for item in checkin.items}  # 31.3

    result = assessed(checkin, answers, history_client=client, history_pair=client)

    assert result.score.overall == 31.3
    assert result.is_low
    assert "first_low" not in [flag.code for flag in result.flags]


def test_a_score_above_the_lowest_band_is_not_low(pulse):
    answers = {"focus": 8, "approach": 7, "speak-up": 7, "respect": 7}  # 72.5

    assert not assessed(pulse, answers).is_low


def test_item_rule_on_the_answer_as_given(checkin):
    answers = {
        "listened": 5,
        "shared-aims": 5,
        "plan": 5,
        "pressure": 5,
        "held-back": 5,
        "boundaries": 5,
        "confidential": 5,
        "safe": 5,
    }

    result = assessed(checkin, answers)

    # held-back 5 = "completely true that I held something back" (reversed to 1 for scoring)
    assert result.talking_points == [
        "Tell them at the start that they can ask to pause, adjust or stop at any time, and "
        "check in once mid-session."
    ]


def test_all_well_gives_the_positive_line(checkin):
    answers = {
        "listened": 5,
        "shared-aims": 4,
        "plan": 4,
        "pressure": 5,
        "held-back": 1,
        "boundaries": 5,
        "confidential": 5,
        "safe": 4,
    }

    result = assessed(checkin, answers, language="es")

    assert result.flags == []
    assert result.talking_points == []
    assert result.positive == "Todo bien: siga preguntando cómo siente la presión y qué necesita."


def test_srs_flags_from_the_template(clinic_registry, visits):
    srs = clinic_registry.get("srs")
    history = visits(92.5, instrument="srs")  # last session 37/40
    answers = {"srs-1": 9, "srs-2": 8, "srs-3": 10, "srs-4": 8}  # 35 → 87.5

    result = assessed(srs, answers, history_pair=history, history_client=history)

    # First time below the SRS cutoff (36/40) too: the template's lowest band.
    assert [flag.code for flag in result.flags] == [
        "first_low",
        "srs_total_low",
        "srs_item_low",
        "srs_drop",
    ]
    assert result.flags[1].detail == {"value": 35}
    assert result.flags[2].detail == {"items": {"srs-2": 8, "srs-4": 8}}
    assert result.flags[3].detail == {"change": "previous", "value": -5.0}
    # The SRS has no goals subscale: no point tells to revisit goals.
    assert result.talking_points == [
        ASK_LAST_VISIT,
        "Go through the lines they marked below 9 with them, one at a time, and agree on one "
        "change for the next session.",
    ]


def test_texts_fall_back_to_english_where_the_instrument_lacks_the_language(clinic_registry):
    wai = clinic_registry.get("wai-sr")
    answers = {f"wai-{n}": 2 for n in range(1, 13)}

    result = assessed(wai, answers, language="fr-CA")

    # The talking points are Rapport's own words, in French even though the licensed
    # wording (and so the subscale titles) is English only.
    assert result.talking_points[0] == (
        "Commencez la prochaine séance en demandant comment s'est passée la précédente et "
        "ce que la personne aimerait changer."
    )
    assert (
        result.flags[0].message_in(result.language)
        == "Sous 60 : Goal 25/100, Task 25/100, Bond 25/100."
    )


def test_unscored_response_still_hears_an_item_rule(checkin):
    answers = {"pressure": 1}

    result = assessed(checkin, answers)

    assert result.score.scored is False
    assert result.flags == []
    assert result.talking_points[0].startswith("Check pressure aloud early")
    assert result.positive is None


def test_to_dict_is_json_ready(pulse, visits):
    history = visits(85.0, 84.0, 84.5)
    answers = {"focus": 8, "approach": 7, "speak-up": 7, "respect": 7}

    data = assessed(pulse, answers, comment="  Lovely 🌿  ", history_pair=history).to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["instrument"] == {"id": "rapport-pulse", "version": "1"}
    assert data["overall"] == 72.5
    assert data["band"] == {"id": "some-concerns", "label": "Some concerns", "caveat": None}
    assert data["trend"] == [85.0, 84.0, 84.5, 72.5]
    assert data["sparkline"] == "███▃"  # the 12-point drop shows
    assert data["change"] == {"from_previous": -12.0, "from_baseline": -12.0, "baseline": 84.5}
    assert [flag["code"] for flag in data["flags"]] == ["drop"]
    assert data["talking_points"] == [ASK_LAST_VISIT]
    assert data["comment"] == "Lovely 🌿"
    assert data["headline"] == "Needs attention: down 12 points since the first visits"
    assert data["low_answers"] == [] and data["low_subscales"] == []


def test_score_must_belong_to_the_instrument(checkin, pulse):
    answers = {"focus": 8, "approach": 7, "speak-up": 7, "respect": 7}

    with pytest.raises(ValueError, match="score is for rapport-pulse v1, not rapport-checkin v1"):
        assess(checkin, score(pulse, answers), answers)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="trend_length must be between 1 and 8"):
        FlagSettings(trend_length=12)


@pytest.mark.parametrize(
    ("language", "pressure", "plan"),
    [("en", "pressure", "plan"), ("fr", "pression", "plan"), ("es", "presión", "plan")],
)
def test_low_task_and_low_pressure_give_two_different_things_to_do(
    checkin, language, pressure, plan
):
    answers = {item.id: 5 for item in checkin.items} | {"plan": 2, "pressure": 2, "held-back": 1}

    points = assessed(checkin, answers).talking_points_in(language)

    # task (2 + 2 + 5) / 3 = 3 → 50, below 60: the task rule and the pressure rule both hold.
    assert len(points) == 2
    task, checks = points
    assert plan in task.lower() and pressure not in task.lower()
    assert pressure in checks.lower()
    if language == "en":
        assert points == [EXPLAIN_PLAN, CHECK_PRESSURE]


@pytest.mark.parametrize(
    ("language", "label"),
    [
        ("en", "Top of the scale"),
        ("fr", "Au maximum de l'échelle"),
        ("es", "Al máximo de la escala"),
    ],
)
def test_all_answers_at_the_top_are_not_labelled_as_the_best_band(checkin, language, label):
    top = {item.id: 5 for item in checkin.items} | {"held-back": 1}

    result = assessed(checkin, top, language=language)

    assert result.score.band.id == "working-well"
    assert result.band_label_in(language) == label
    assert result.to_dict()["band"] == {"id": "working-well", "label": label, "caveat": "ceiling"}


def test_a_high_score_short_of_the_ceiling_keeps_its_band_label(checkin):
    almost = {item.id: 5 for item in checkin.items} | {"held-back": 1, "safe": 4}

    result = assessed(checkin, almost)

    assert result.band_label_in("en") == "Working well"
    assert result.to_dict()["band"] == {
        "id": "working-well", "label": "Working well", "caveat": None}
