"""Scores checked against values computed by hand."""

from __future__ import annotations

import pytest

from questionnaires import AnswerError, score
from questionnaires.loading import instrument_from_document

CHECKIN_ANSWERS = {
    "listened": 5,
    "shared-aims": 4,  # goal
    "plan": 3,
    "pressure": 2,
    "held-back": 4,  # task; held-back is reverse-keyed
    "boundaries": 5,
    "confidential": 4,
    "safe": 5,  # bond
}


def test_checkin_by_hand(checkin):
    result = score(checkin, CHECKIN_ANSWERS)

    # held-back 4 reversed on 1–5 is 1+5-4 = 2.
    assert result.item_values["held-back"] == 2
    # goal (5+4)/2 = 4.5 → (4.5-1)/4 = 87.5; task (3+2+2)/3 = 2.333 → 33.3;
    # bond (5+4+5)/3 = 4.667 → 91.7; overall 30/8 = 3.75 → 68.75 → 68.8 (half up).
    assert result.subscales["goal"].raw == 4.5
    assert result.subscales["goal"].normalized == 87.5
    assert result.subscales["task"].raw == 2.33
    assert result.subscales["task"].normalized == 33.3
    assert result.subscales["bond"].normalized == 91.7
    assert result.overall_raw == 3.75
    assert result.overall == 68.8
    assert result.band.id == "some-concerns"
    assert result.band.label["fr"] == "Quelques réserves"
    assert result.scored is True
    assert result.reason is None
    assert result.at_ceiling is False


def test_checkin_fills_one_gap_from_its_own_subscale(checkin):
    answers = {**CHECKIN_ANSWERS, "boundaries": "na"}

    result = score(checkin, answers)

    # bond: boundaries filled with the mean of confidential and safe (4.5).
    assert result.item_values["boundaries"] == 4.5
    assert result.subscales["bond"].raw == 4.5
    assert result.not_applicable == ("boundaries",)
    assert result.overall_raw == 3.69  # 29.5 / 8 = 3.6875


def test_checkin_with_two_gaps_is_not_scored(checkin):
    answers = {**CHECKIN_ANSWERS, "boundaries": "na"}
    del answers["plan"]

    result = score(checkin, answers)

    assert result.scored is False
    assert result.overall is None
    assert result.subscales == {}
    assert result.missing == ("plan",)
    assert result.reason == (
        "1 answer was 'does not apply' and 1 answer was left blank; "
        "at most 1 can be filled in, so this response is not scored."
    )
    assert result.reason_in("fr") == (
        "1 réponse était « ne s'applique pas » et 1 question est restée sans réponse ; "
        "au plus 1 peut être complétée : ce questionnaire n'est donc pas noté."
    )


def test_pulse_needs_every_answer(pulse):
    result = score(pulse, {"focus": 7, "approach": 10, "speak-up": 4})

    assert result.scored is False
    assert result.reason == (
        "1 answer was left blank; every item needs an answer, so this response is not scored."
    )


def test_pulse_by_hand(pulse):
    result = score(pulse, {"focus": 7, "approach": 10, "speak-up": 4, "respect": 9})

    # overall mean 30/4 = 7.5 on 0–10 → 75.0; bond (4+9)/2 = 6.5 → 65.0
    assert result.overall == 75.0
    assert result.subscales["bond"].normalized == 65.0
    assert result.subscales["task"].normalized == 100.0
    assert result.band.id == "some-concerns"


def test_all_maximum_is_at_ceiling_even_with_a_reversed_item(checkin):
    answers = {item.id: 5 for item in checkin.items} | {"held-back": 1}

    result = score(checkin, answers)

    assert result.overall == 100.0
    assert result.at_ceiling is True


def test_subscale_mean_fill_with_an_empty_subscale_is_not_scored(minimal):
    minimal["scoring"] = {"method": "mean", "max_missing": 2, "fill": "subscale_mean"}
    instrument = instrument_from_document(minimal)

    result = score(instrument, {"c": 3, "d": 2})

    assert result.scored is False
    assert result.reason == "No item about 'Goals' was answered, so this response is not scored."


@pytest.mark.parametrize(
    ("answers", "item", "message"),
    [
        ({"pressure": 6}, "pressure", "6 is not on the scale 1–5"),
        ({"pressure": 0}, "pressure", "0 is not on the scale 1–5"),
        ({"pressure": "4"}, "pressure", "'4' is not a whole number from the scale"),
        ({"pressure": True}, "pressure", "True is not a whole number from the scale"),
        ({"presure": 4}, "presure", "no such item in 'rapport-checkin'"),
    ],
)
def test_impossible_answers_name_the_item(checkin, answers, item, message):
    with pytest.raises(AnswerError) as caught:
        score(checkin, answers)

    assert caught.value.item_id == item
    assert str(caught.value) == f"item '{item}': {message}"


def test_not_applicable_only_where_offered(pulse):
    with pytest.raises(
        AnswerError, match="item 'focus': 'rapport-pulse' offers no 'does not apply'"
    ):
        score(pulse, {"focus": "na", "approach": 1, "speak-up": 1, "respect": 1})


def test_none_counts_as_blank(checkin):
    answers = {**CHECKIN_ANSWERS, "safe": None}

    assert score(checkin, answers).missing == ("safe",)


def test_wai_sr_from_the_template_by_hand(clinic_registry):
    wai = clinic_registry.get("wai-sr")
    values = [5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 4]
    answers = {f"wai-{n}": value for n, value in enumerate(values, start=1)}

    result = score(wai, answers)

    # Task 1,2,10,12 = 5+4+1+4 = 14; Goal 4,6,8,11 = 2+5+3+5 = 15; Bond 3,5,7,9 = 3+1+4+2 = 10
    assert {sub_id: sub.raw for sub_id, sub in result.subscales.items()} == {
        "goal": 15,
        "task": 14,
        "bond": 10,
    }
    # subscales 4–20: (14-4)/16 = 62.5, (15-4)/16 = 68.75 → 68.8, (10-4)/16 = 37.5
    assert result.subscales["task"].normalized == 62.5
    assert result.subscales["goal"].normalized == 68.8
    assert result.subscales["bond"].normalized == 37.5
    # total 12–60: 39 → (39-12)/48 = 56.25 → 56.3
    assert result.overall_raw == 39
    assert result.overall == 56.3
    assert result.band is None


def test_srs_from_the_template_by_hand(clinic_registry):
    srs = clinic_registry.get("srs")

    result = score(srs, {"srs-1": 9, "srs-2": 8, "srs-3": 10, "srs-4": 8})

    assert result.overall_raw == 35
    assert result.overall == 87.5
    assert result.band.id == "below-cutoff"
    assert (
        score(srs, {"srs-1": 9, "srs-2": 9, "srs-3": 9, "srs-4": 9}).band.id == "at-or-above-cutoff"
    )


def test_score_to_dict_is_plain_data(checkin):
    data = score(checkin, CHECKIN_ANSWERS).to_dict("es")

    assert data["instrument"] == {"id": "rapport-checkin", "version": "1"}
    assert data["band"] == {"id": "some-concerns", "label": "Algunas reservas"}
    assert data["subscales"]["goal"] == {"raw": 4.5, "normalized": 87.5}
