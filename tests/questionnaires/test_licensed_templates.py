"""The licensed-instrument templates carry the published structure and no licensed text,
and a copy whose placeholders were not all replaced never loads."""

from __future__ import annotations

import re

import pytest
import yaml

from questionnaires import SHIPPED_DIR, InstrumentError, assess, load_instrument, score

LICENSED = SHIPPED_DIR.parent / "licensed"
PLACEHOLDER = re.compile(r"<<[^<>]*>>")


def test_wai_sr_template_has_the_published_structure(clinic_dir):
    wai = load_instrument(clinic_dir / "wai-sr.yaml")

    by_subscale = {
        sub.id: [int(item.id.removeprefix("wai-")) for item in wai.items_of(sub.id)]
        for sub in wai.subscales
    }
    assert by_subscale == {"task": [1, 2, 10, 12], "goal": [4, 6, 8, 11], "bond": [3, 5, 7, 9]}
    assert (wai.scale.min, wai.scale.max) == (1, 5)
    assert wai.scale.labels[1] == {"en": "Seldom"} and wai.scale.labels[5] == {"en": "Always"}
    assert wai.scoring.method == "sum"
    assert wai.overall_bounds() == (12, 60)
    assert wai.subscale_bounds("task") == (4, 20)
    assert wai.bands is None  # no official cutoffs
    assert not any(item.reverse for item in wai.items)


def test_srs_template_has_the_published_structure_and_concern_rules(clinic_dir):
    srs = load_instrument(clinic_dir / "srs.yaml")

    assert [item.id for item in srs.items] == ["srs-1", "srs-2", "srs-3", "srs-4"]
    assert (srs.scale.min, srs.scale.max) == (0, 10)
    assert srs.overall_bounds() == (0, 40)
    assert [(band.start, band.end) for band in srs.bands.ranges] == [(0, 36), (36, 40)]
    rules = {flag.code: flag.when for flag in srs.flags}
    assert rules["srs_total_low"].comparisons == (("below", 36),)
    assert rules["srs_total_low"].raw is True
    assert rules["srs_item_low"].comparisons == (("below", 9),)
    assert rules["srs_drop"].comparisons == (("at_most", -2.5),)  # 1 of 40 points


@pytest.mark.parametrize("name", ["wai-sr.template.yaml", "srs.template.yaml"])
def test_templates_hold_marked_placeholders_not_wording(name):
    document = yaml.safe_load((LICENSED / name).read_text(encoding="utf-8"))

    for item in document["items"]:
        assert PLACEHOLDER.fullmatch(item["text"]["en"]), item["id"]
    assert PLACEHOLDER.fullmatch(document["intro"]["en"])


@pytest.mark.parametrize("name", ["wai-sr.template.yaml", "srs.template.yaml"])
def test_a_template_with_its_placeholders_left_in_does_not_load(name):
    with pytest.raises(InstrumentError) as caught:
        load_instrument(LICENSED / name)

    paths = {path for _, path, _ in caught.value.errors}
    assert {"intro.en", "items[0].text.en", "items[3].text.en"} <= paths
    assert {file for file, _, _ in caught.value.errors} == {str(LICENSED / name)}


def test_a_copy_with_one_item_left_unfilled_names_that_item(clinic_dir):
    path = clinic_dir / "wai-sr.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            'text: {en: "dummy wording for tests"}',
            'text: {en: "<<WAI-SR item 1 — paste the licensed wording here>>"}',
            1,
        ),
        encoding="utf-8",
    )

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    assert caught.value.errors == [
        (
            str(path),
            "items[0].text.en",
            "still holds the template's placeholder "
            "'<<WAI-SR item 1 — paste the licensed wording here>>': "
            "replace it with the licensed wording",
        )
    ]


def test_a_placeholder_whose_brackets_were_dropped_is_still_refused(clinic_dir):
    path = clinic_dir / "srs.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            '0: {en: "dummy wording for tests"}',
            '0: {en: "SRS item 1, left end — paste the licensed wording here"}',
            1,
        ),
        encoding="utf-8",
    )

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    [(_, where, message)] = caught.value.errors
    assert where == "items[0].labels[0].en"
    assert "placeholder" in message


@pytest.mark.parametrize("language", ["fr", "es"])
def test_an_english_only_licensed_copy_gives_talking_points_in_the_clinics_language(
    clinic_registry, visits, language
):
    wai = clinic_registry.get("wai-sr")
    assert wai.languages == ("en",)
    answers = {f"wai-{i}": 3 for i in range(1, 13)}  # 50.0 overall: first low, all low

    assessment = assess(wai, score(wai, answers), answers, language=language)
    english = assess(wai, score(wai, answers), answers, language="en")

    assert len(assessment.talking_points) == 3
    for point, in_english in zip(assessment.talking_points, english.talking_points, strict=True):
        assert point != in_english
    assert assessment.talking_points[0] == {
        "fr": "Commencez la prochaine séance en demandant comment s'est passée la précédente "
        "et ce que la personne aimerait changer.",
        "es": "Empiece la próxima sesión preguntando cómo se sintió en la anterior y qué le "
        "gustaría cambiar.",
    }[language]


def test_srs_copy_localizes_its_flag_messages_and_band_labels(clinic_registry):
    srs = clinic_registry.get("srs")
    answers = {"srs-1": 10, "srs-2": 10, "srs-3": 9, "srs-4": 6}

    assessment = assess(srs, score(srs, answers), answers, language="fr")

    messages = {flag.code: flag.message_in("fr") for flag in assessment.flags}
    assert messages["srs_item_low"] == "Au moins une ligne du SRS sous 9."
    assert assessment.band_label_in("fr") == "Sous le seuil du SRS (36)"


def test_what_the_client_sees_still_takes_no_language_outside_languages(clinic_dir):
    path = clinic_dir / "wai-sr.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    1: {en: Seldom}", "    1: {en: Seldom, fr: Rarement}"),
                    encoding="utf-8")

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    assert caught.value.errors == [
        (str(path), "scale.labels[1].fr", "'fr' is not in `languages` (en)")
    ]
