"""What the note's first line and talking points are made of: a short and a long name
per subscale, a few words per item for a low answer, drop rules narrowed to the
subscale that fell the most; checked in the files, shipped and licensed."""

from __future__ import annotations

import pytest

from questionnaires import InstrumentError, assess, score
from questionnaires.loading import ACROSS_THE_FILE, instrument_from_document

LANGUAGES = ("en", "fr", "es")
TEXT = {"en": "Do", "fr": "Faites"}


def errors_of(document) -> list[tuple[str, str]]:
    with pytest.raises(InstrumentError) as caught:
        instrument_from_document(document, "test.yaml")
    return [(path, message) for _, path, message in caught.value.errors]


def test_long_names_and_concerns_load(minimal):
    minimal["subscales"][0]["long_title"] = {"en": "agreeing on aims", "fr": "l'accord"}
    minimal["items"][0]["concern"] = {"en": "aims unclear", "fr": "but flou"}

    instrument = instrument_from_document(minimal)

    assert instrument.subscale("goal").long_in("fr") == "l'accord"
    assert instrument.subscale("task").long_in("en") == "Tasks"  # the short name, if none
    assert instrument.item("a").concern == {"en": "aims unclear", "fr": "but flou"}


def test_long_names_and_concerns_need_every_language_and_may_add_others(minimal):
    minimal["subscales"][0]["long_title"] = {"en": "agreeing on aims", "es": "el acuerdo"}
    minimal["items"][1]["concern"] = {"fr": "but flou", "de": "Ziel unklar", "en": " "}

    assert errors_of(minimal)[0] == ("items[1].concern.en", "is empty")
    minimal["items"][1]["concern"]["en"] = "aims unclear"
    assert errors_of(minimal) == [
        ("subscales[0].long_title.fr",
         "missing: every language in `languages` (en, fr) needs this text"),
    ]


def test_a_concern_still_holding_a_placeholder_is_refused(minimal):
    minimal["items"][0]["concern"] = {"en": "<<what a low answer means>>", "fr": "flou"}

    assert errors_of(minimal) == [
        ("items[0].concern.en",
         "still holds the template's placeholder '<<what a low answer means>>': replace it "
         "with the licensed wording"),
    ]


def test_a_drop_narrows_to_a_subscale_and_no_other_flag_does(minimal):
    minimal["talking_points"] = [
        {"id": "p1", "when": {"flag": "drop", "subscale": "goal"}, "priority": 1, "text": TEXT},
        {"id": "p2", "when": {"flag": "drop", "subscale": "bnod"}, "priority": 1, "text": TEXT},
        {"id": "p3", "when": {"flag": "first_low", "subscale": "goal"}, "priority": 1,
         "text": TEXT},
    ]

    assert errors_of(minimal) == [
        ("talking_points[2].when.subscale",
         "'subscale' narrows only 'flag: low_subscale' and 'flag: drop'"),
        ("", ACROSS_THE_FILE),
    ]
    del minimal["talking_points"][2]
    assert errors_of(minimal) == [
        ("talking_points[1].when.subscale", "no subscale 'bnod' (known: goal, task)"),
    ]


@pytest.fixture(params=["rapport-checkin", "rapport-pulse"])
def instrument(request, shipped):
    return shipped.get(request.param)


def test_every_subscale_has_a_long_name_and_every_item_a_concern(instrument):
    for subscale in instrument.subscales:
        assert set(subscale.long_title) == set(LANGUAGES)
        for language in LANGUAGES:
            # Written to follow "Needs attention:": lowercase, no colon of its own.
            assert subscale.long_title[language][0].islower()
            assert ":" not in subscale.long_title[language]
    for item in instrument.items:
        assert set(item.concern) == set(LANGUAGES)


def test_every_low_answer_has_a_talking_point_and_is_named_first(instrument):
    scale = instrument.scale
    best = {item.id: scale.min if item.reverse else scale.max for item in instrument.items}
    for item in instrument.items:
        # A low answer that does not pull its subscale down to low on its own.
        low = scale.min + (scale.max - scale.min) // 2  # 3 of 5, 5 of 10
        answers = best | {item.id: scale.min + scale.max - low if item.reverse else low}

        result = assess(instrument, score(instrument, answers), answers)

        assert result.talking_points, item.id
        assert result.headline_in("en").startswith("Needs attention: ")
        if not result.low_subscales:
            assert item.concern["en"] in result.headline_in("en")


def test_every_subscale_has_its_own_drop_point(instrument):
    narrowed = {rule.when.subscale for rule in instrument.talking_points
                if rule.when.target == "drop" and rule.when.subscale}
    plain = [rule for rule in instrument.talking_points
             if rule.when.target == "drop" and not rule.when.subscale]

    assert narrowed == {sub.id for sub in instrument.subscales}
    assert len(plain) == 1
    assert "goal" not in plain[0].text["en"].lower()  # a drop names no area it cannot see


def test_the_licensed_templates_name_their_subscales_and_lines(clinic_registry):
    wai, srs = clinic_registry.get("wai-sr"), clinic_registry.get("srs")

    assert all(set(sub.long_title) == set(LANGUAGES) for sub in wai.subscales)
    assert all(set(item.concern) == set(LANGUAGES) for item in srs.items)
    answers = {f"wai-{n}": 5 for n in range(1, 13)} | {"wai-5": 1}
    result = assess(wai, score(wai, answers), answers)
    # No concern of its own: the answer is named by its number on the form.
    assert result.headline_in("en") == "Needs attention: answer 5 (1/5)"
