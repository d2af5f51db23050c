"""Rapport's own instruments: complete in every language, renderable, scorable, and
within the lines CLINICAL.md draws."""

from __future__ import annotations

import re

import pytest

from questionnaires import NOT_APPLICABLE, answer_schema, assess, score
from questionnaires.model import BUILT_IN_FLAGS

LANGUAGES = ["en", "fr", "es"]
# Words that would name a treatment, a body complaint or a condition in an item.
HEALTH_WORDS = re.compile(
    r"\b(massage|masaje|pain|douleur|dolor|injur|blessure|lesi[oó]n|tissue|tissu|tejido|"
    r"muscle|m[uú]sculo|back|dos|espalda|stress|estr[eé]s|anxi|anxiété|ansiedad|tension|"
    r"tensi[oó]n|migraine|migraña|sciati|ci[aá]tica|therapy|thérapie|terapia)",
    re.IGNORECASE,
)


@pytest.fixture(params=["rapport-checkin", "rapport-pulse"])
def instrument(request, shipped):
    return shipped.get(request.param)


def test_sizes_and_scales(checkin, pulse):
    assert len(checkin.items) == 8
    assert (checkin.scale.min, checkin.scale.max) == (1, 5)
    assert [item.id for item in checkin.items if item.reverse] == ["held-back"]
    assert len(pulse.items) == 4
    assert (pulse.scale.min, pulse.scale.max) == (0, 10)


def test_both_cover_goal_task_and_bond(instrument):
    assert [sub.id for sub in instrument.subscales] == ["goal", "task", "bond"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_localized_form_has_everything_the_page_needs(instrument, language):
    form = instrument.localized(language)

    assert form.language == language
    assert form.title and form.intro and form.comment_question
    assert len(form.items) == len(instrument.items)
    assert all(item.text for item in form.items)
    assert form.points[0].label and form.points[-1].label
    texts = [form.title, form.intro, form.comment_question, *[i.text for i in form.items]]
    assert len(set(texts)) == len(texts)


def test_localized_checkin_in_french(checkin):
    form = checkin.localized("fr-CA")

    assert form.language == "fr"
    assert form.title == "Retour sur votre séance"
    assert form.items[3].text == "La pression et le toucher vous convenaient."
    assert [(p.value, p.label) for p in form.points] == [
        (1, "Pas du tout"),
        (2, "Un peu"),
        (3, "Moyennement"),
        (4, "En grande partie"),
        (5, "Tout à fait"),
    ]
    assert form.not_applicable == "Ne s'applique pas"


def test_localized_pulse_labels_only_the_ends(pulse):
    form = pulse.localized("es")

    assert form.not_applicable is None
    assert [p.label for p in form.points] == ["Nada", *[None] * 9, "Totalmente"]
    assert form.items[0].points == form.points


def test_unknown_language_falls_back_to_english(checkin):
    assert checkin.localized("de").title == "Visit check-in"


def test_items_name_no_treatment_or_condition(instrument):
    for item in instrument.items:
        for language, text in item.text.items():
            assert not HEALTH_WORDS.search(text), (item.id, language, text)


def test_clients_are_addressed_formally(instrument):
    client_facing = [
        instrument.intro,
        instrument.comment_question,
        *[item.text for item in instrument.items],
    ]
    for texts in client_facing:
        assert not re.search(r"\b(tu|toi|ton|ta|tes|t')\b", texts["fr"], re.IGNORECASE)
        assert not re.search(r"\b(tú|tu|tus|ti|te)\b", texts["es"], re.IGNORECASE)


def test_every_built_in_flag_leads_to_a_talking_point(instrument):
    flagged = {
        rule.when.target for rule in instrument.talking_points if rule.when.subject == "flag"
    }

    assert set(BUILT_IN_FLAGS) <= flagged
    low_subscales = {
        rule.when.subscale
        for rule in instrument.talking_points
        if rule.when.target == "low_subscale"
    }
    assert low_subscales == {"goal", "task", "bond"}
    assert instrument.positive is not None


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_form_submission_scores_and_assesses_in_each_language(instrument, language):
    middle = (instrument.scale.min + instrument.scale.max) // 2
    form = {item.id: str(middle) for item in instrument.items}
    form["comment"] = "Merci 🙏"
    loaded = answer_schema(instrument).load(form)

    result = score(instrument, loaded["answers"])
    assessment = assess(instrument, result, loaded["answers"], loaded["comment"], language=language)

    assert result.scored
    assert 0 < result.overall < 100
    assert assessment.comment == "Merci 🙏"
    assert len(assessment.talking_points) in (1, 2, 3)
    expected = {rule.text[language] for rule in instrument.talking_points}
    assert set(assessment.talking_points) <= expected


def test_checkin_accepts_one_not_applicable(checkin):
    answers = {item.id: 4 for item in checkin.items} | {"boundaries": NOT_APPLICABLE}

    assert score(checkin, answers).subscales["bond"].raw == 4
