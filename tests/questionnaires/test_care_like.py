"""CARE's "does not apply" rule, on a test-only instrument of the same shape: up to two
N/A answers are replaced by the mean of the answered items; with more, not scored."""

from __future__ import annotations

from questionnaires import answer_schema, score


def answers(*values):
    return {f"care-{n}": value for n, value in enumerate(values, start=1)}


def test_all_answered_is_a_plain_sum(care_like):
    result = score(care_like, answers(5, 4, 3, 5, 4, 3, 5, 4, 3, 4))

    assert result.overall_raw == 40
    assert result.overall == 75.0  # (40-10)/40
    assert result.band.id == "high"


def test_two_not_applicable_are_filled_with_the_mean_of_the_rest(care_like):
    result = score(care_like, answers(5, 4, 3, 5, "na", 3, 5, "na", 3, 4))

    # answered: 5+4+3+5+3+5+3+4 = 32 over 8 → mean 4; total 32 + 2*4 = 40
    assert result.item_values["care-5"] == 4
    assert result.item_values["care-8"] == 4
    assert result.overall_raw == 40
    assert result.not_applicable == ("care-5", "care-8")


def test_fill_can_be_fractional(care_like):
    result = score(care_like, answers(5, 5, 5, 5, 5, 5, 5, 4, "na", "na"))

    # mean 39/8 = 4.875, total 39 + 9.75 = 48.75 → (48.75-10)/40 = 96.875 → 96.9
    assert result.overall_raw == 48.75
    assert result.overall == 96.9


def test_three_not_applicable_is_not_scored_and_says_why(care_like):
    result = score(care_like, answers(5, 4, 3, "na", 4, "na", 5, "na", 3, 4))

    assert result.scored is False
    assert result.overall is None
    assert result.band is None
    assert result.reason == (
        "3 answers were 'does not apply'; at most 2 can be filled in, "
        "so this response is not scored."
    )
    assert result.reason_in("es") == (
        "3 respuestas fueron «no aplica»; como máximo se pueden completar 2, "
        "así que este cuestionario no se puntúa."
    )


def test_blank_and_not_applicable_count_together(care_like):
    partial = answers(5, 4, 3, "na", 4, "na", 5, 4, 3, 4)
    del partial["care-10"]

    result = score(care_like, partial)

    assert result.scored is False
    assert result.reason.startswith("2 answers were 'does not apply' and 1 answer was left blank;")


def test_form_offers_na_and_makes_items_optional(care_like):
    form = answer_schema(care_like)

    loaded = form.load({"care-1": "na", "care-2": "3"})

    assert loaded == {"answers": {"care-1": "na", "care-2": 3}, "comment": None}
