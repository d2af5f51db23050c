"""The licensed-instrument templates carry the published structure and no licensed text."""

from __future__ import annotations

from questionnaires import SHIPPED_DIR, load_instrument

LICENSED = SHIPPED_DIR.parent / "licensed"


def test_wai_sr_template_has_the_published_structure():
    wai = load_instrument(LICENSED / "wai-sr.template.yaml")

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


def test_srs_template_has_the_published_structure_and_concern_rules():
    srs = load_instrument(LICENSED / "srs.template.yaml")

    assert [item.id for item in srs.items] == ["srs-1", "srs-2", "srs-3", "srs-4"]
    assert (srs.scale.min, srs.scale.max) == (0, 10)
    assert srs.overall_bounds() == (0, 40)
    assert [(band.start, band.end) for band in srs.bands.ranges] == [(0, 36), (36, 40)]
    rules = {flag.code: flag.when for flag in srs.flags}
    assert rules["srs_total_low"].comparisons == (("below", 36),)
    assert rules["srs_total_low"].raw is True
    assert rules["srs_item_low"].comparisons == (("below", 9),)
    assert rules["srs_drop"].comparisons == (("at_most", -2.5),)  # 1 of 40 points


def test_templates_hold_placeholders_not_wording():
    for name in ("wai-sr.template.yaml", "srs.template.yaml"):
        instrument = load_instrument(LICENSED / name)
        for item in instrument.items:
            assert item.text["en"].endswith("— paste the licensed wording here"), item.id
