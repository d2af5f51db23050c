"""The survey form's validation: what the page posts, what score() receives."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from questionnaires import answer_schema, score

PULSE_FORM = {"focus": "7", "approach": "10", "speak-up": " 4 ", "respect": "9"}


def test_form_strings_become_answers_ready_to_score(pulse):
    loaded = answer_schema(pulse).load({**PULSE_FORM, "comment": "  Thanks!  ", "csrf_token": "x"})

    assert loaded == {
        "answers": {"focus": 7, "approach": 10, "speak-up": 4, "respect": 9},
        "comment": "Thanks!",
    }
    assert score(pulse, loaded["answers"]).overall == 75.0


def test_every_item_is_required_when_none_may_be_missing(pulse):
    with pytest.raises(ValidationError) as caught:
        answer_schema(pulse).load({"focus": "7", "approach": ""})

    assert caught.value.messages == {
        "approach": ["Missing data for required field."],
        "speak-up": ["Missing data for required field."],
        "respect": ["Missing data for required field."],
    }


def test_items_are_optional_when_the_instrument_fills_gaps(checkin):
    loaded = answer_schema(checkin).load({"listened": "5", "boundaries": "na"})

    assert loaded == {"answers": {"listened": 5, "boundaries": "na"}, "comment": None}


@pytest.mark.parametrize("value", ["11", "-1", "7.5", "seven", "na"])
def test_values_off_the_scale_are_refused(pulse, value):
    with pytest.raises(ValidationError) as caught:
        answer_schema(pulse).load({**PULSE_FORM, "focus": value})

    assert caught.value.messages == {"focus": ["Choose a number from 0 to 10."]}


def test_na_is_refused_with_a_hint_where_it_is_offered(checkin):
    with pytest.raises(ValidationError) as caught:
        answer_schema(checkin).load({"listened": "6"})

    assert caught.value.messages == {"listened": ["Choose a number from 1 to 5."]}
    with pytest.raises(ValidationError) as caught:
        answer_schema(checkin).load({"listened": "maybe"})
    assert caught.value.messages == {"listened": ["Choose a number from 1 to 5 or 'na'."]}


def test_comment_is_stripped_and_capped_at_1000_characters(pulse):
    schema = answer_schema(pulse)

    assert schema.load({**PULSE_FORM, "comment": " " + "é" * 1000 + "\n"})["comment"] == "é" * 1000
    with pytest.raises(ValidationError) as caught:
        schema.load({**PULSE_FORM, "comment": "x" * 1001})
    assert caught.value.messages == {"comment": ["Longer than maximum length 1000."]}
