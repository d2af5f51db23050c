"""Instrument files: what loads, and that each mistake is reported where it is."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import questionnaires
from questionnaires import InstrumentError, load_instrument
from questionnaires.loading import ACROSS_THE_FILE, instrument_from_document


def errors_of(document) -> list[tuple[str, str]]:
    with pytest.raises(InstrumentError) as caught:
        instrument_from_document(document, "test.yaml")
    assert all(file == "test.yaml" for file, _, _ in caught.value.errors)
    return [(path, message) for _, path, message in caught.value.errors]


def test_minimal_document_loads_into_an_instrument(minimal):
    instrument = instrument_from_document(minimal)

    assert instrument.id == "mini"
    assert instrument.version == "1"
    assert [item.id for item in instrument.items] == ["a", "b", "c", "d"]
    assert instrument.item("d").reverse is True
    assert instrument.scoring.max_missing == 0
    assert instrument.scoring.fill == "mean"
    assert instrument.overall_bounds() == (1.0, 5.0)


def test_file_error_names_file_path_and_problem(tmp_path, minimal):
    del minimal["items"][3]["text"]["fr"]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(minimal, allow_unicode=True), encoding="utf-8")

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    assert caught.value.errors == [
        (
            str(path),
            "items[3].text.fr",
            "missing: every language in `languages` (en, fr) needs this text",
        )
    ]
    assert str(caught.value).startswith(f"{path}: items[3].text.fr: missing")


def test_text_in_a_language_not_listed_is_an_error(minimal):
    minimal["subscales"][1]["title"]["de"] = "Aufgaben"

    assert errors_of(minimal) == [("subscales[1].title.de", "'de' is not in `languages` (en, fr)")]


def test_item_in_unknown_subscale(minimal):
    minimal["items"][2]["subscale"] = "bnod"

    assert errors_of(minimal) == [("items[2].subscale", "no subscale 'bnod' (known: goal, task)")]


def test_duplicate_item_id_points_at_the_second_one(minimal):
    minimal["items"][2]["id"] = "a"

    assert ("items[2].id", "'a' is already used by items[0]") in errors_of(minimal)


def test_comment_is_reserved_for_the_free_text_answer(minimal):
    minimal["items"][0]["id"] = "comment"

    assert errors_of(minimal) == [("items[0].id", "'comment' is reserved for the free-text answer")]


def test_subscale_without_items(minimal):
    minimal["subscales"].append({"id": "bond", "title": {"en": "Bond", "fr": "Lien"}})

    assert errors_of(minimal) == [("subscales[2]", "subscale 'bond' has no items")]


def test_structural_errors_have_paths(minimal):
    minimal["scale"]["min"] = "one"
    minimal["items"][1]["subscal"] = "goal"
    del minimal["scoring"]["method"]

    assert sorted(errors_of(minimal)) == [
        ("", ACROSS_THE_FILE),
        ("items[1].subscal", "unknown field (see questionnaires/README.md for the fields)"),
        ("scale.min", "Not a valid integer."),
        ("scoring.method", "required field is missing"),
    ]


def test_the_checks_across_the_file_follow_once_the_fields_are_right(minimal):
    minimal["scoring"]["method"] = "total"
    minimal["items"][2]["subscale"] = "bnod"

    assert errors_of(minimal) == [("scoring.method", "Must be one of: sum, mean."),
                                  ("", ACROSS_THE_FILE)]
    minimal["scoring"]["method"] = "sum"
    assert errors_of(minimal) == [("items[2].subscale", "no subscale 'bnod' (known: goal, task)")]


def test_only_a_value_of_the_wrong_type_gets_the_quoting_hint(minimal):
    minimal["items"][0]["revrese"] = True
    minimal["languages"].append(False)  # an unquoted `no`

    found = dict(errors_of(minimal))
    assert found["items[0].revrese"] == (
        "unknown field (see questionnaires/README.md for the fields)")
    assert found["languages[2]"].endswith('put it in quotes, as in "no")')


def test_a_quoted_scale_point_is_told_to_lose_its_quotes(minimal):
    minimal["scale"]["labels"]["1"] = minimal["scale"]["labels"].pop(1)

    assert ("scale.labels.1", "not a valid key: Not a valid integer. (a point of the scale is "
            "a number: write 1: without quotes)") in errors_of(minimal)


def test_scale_ends_must_be_labelled_and_labels_on_the_scale(minimal):
    minimal["scale"]["labels"] = {1: {"en": "No", "fr": "Non"}, 7: {"en": "?", "fr": "?"}}

    assert errors_of(minimal) == [
        ("scale.labels[7]", "7 is not on the scale 1–5"),
        ("scale.labels", "label both ends of the scale: 5 has no label"),
    ]


def test_bands_must_cover_the_scale_without_gap_or_overlap(minimal):
    label = {"en": "x", "fr": "x"}
    minimal["bands"] = {
        "ranges": [
            {"id": "low", "from": 0, "to": 50, "label": label},
            {"id": "mid", "from": 40, "to": 80, "label": label},
            {"id": "high", "from": 80, "to": 99, "label": label},
        ]
    }

    assert errors_of(minimal) == [
        (
            "bands.ranges[1].from",
            "must be 50, where the band before ends "
            "(bands are in order, with no gap and no overlap)",
        ),
        ("bands.ranges[2].to", "must be 100, the highest possible score"),
    ]


def test_raw_bands_are_checked_against_the_raw_range(minimal):
    label = {"en": "x", "fr": "x"}
    minimal["scoring"]["method"] = "sum"
    minimal["bands"] = {
        "score": "raw",
        "ranges": [
            {"id": "low", "from": 0, "to": 10, "label": label},
            {"id": "high", "from": 10, "to": 20, "label": label},
        ],
    }

    assert errors_of(minimal) == [("bands.ranges[0].from", "must be 4, the lowest possible score")]


def test_rules_must_reference_what_exists(minimal):
    text = {"en": "Do", "fr": "Faites"}
    minimal["talking_points"] = [
        {"id": "p1", "when": {"flag": "drops"}, "priority": 1, "text": text},
        {"id": "p2", "when": {"item": "z", "at_most": 2}, "priority": 1, "text": text},
        {"id": "p3", "when": {"subscale": "bond", "below": 60}, "priority": 2, "text": text},
        {
            "id": "p4",
            "when": {"flag": "low_subscale", "subscale": "bond"},
            "priority": 2,
            "text": text,
        },
    ]

    assert errors_of(minimal) == [
        (
            "talking_points[0].when.flag",
            "no flag 'drops' (known: drop, low_subscale, ceiling, first_low)",
        ),
        ("talking_points[1].when.item", "no item 'z' (known: a, b, c, d)"),
        ("talking_points[2].when.subscale", "no subscale 'bond' (known: goal, task)"),
        ("talking_points[3].when.subscale", "no subscale 'bond' (known: goal, task)"),
    ]


def test_rules_may_reference_the_instruments_own_flags(minimal):
    minimal["flags"] = [
        {
            "code": "any_low",
            "when": {"any_item": True, "at_most": 2},
            "message": {"en": "Low", "fr": "Bas"},
        }
    ]
    minimal["talking_points"] = [
        {
            "id": "p",
            "when": {"flag": "any_low"},
            "priority": 1,
            "text": {"en": "Ask", "fr": "Demandez"},
        }
    ]

    instrument = instrument_from_document(minimal)

    assert instrument.talking_points[0].when.target == "any_low"


def test_condition_shape_errors(minimal):
    text = {"en": "Do", "fr": "Faites"}
    minimal["talking_points"] = [
        {
            "id": "p1",
            "when": {"item": "a", "subscale": "goal", "below": 3},
            "priority": 1,
            "text": text,
        },
        {"id": "p2", "when": {"item": "a"}, "priority": 1, "text": text},
        {"id": "p3", "when": {"item": "a", "at_most": 9}, "priority": 1, "text": text},
        {"id": "p4", "when": {"flag": "drop", "below": 3}, "priority": 0, "text": text},
    ]

    assert sorted(errors_of(minimal)) == [
        ("", ACROSS_THE_FILE),
        (
            "talking_points[0].when",
            "give exactly one of flag, subscale, item, any_item, overall, change",
        ),
        ("talking_points[1].when", "add at least one of below, at_most, above, at_least"),
        ("talking_points[3].priority", "Must be greater than or equal to 1."),
        ("talking_points[3].when", "a flag condition takes no below/at_most/above/at_least"),
    ]


def test_thresholds_outside_the_possible_values_are_errors(minimal):
    text = {"en": "Do", "fr": "Faites"}
    minimal["talking_points"] = [
        {"id": "p1", "when": {"item": "a", "at_most": 9}, "priority": 1, "text": text},
        {"id": "p2", "when": {"subscale": "goal", "below": 120}, "priority": 1, "text": text},
    ]

    assert errors_of(minimal) == [
        (
            "talking_points[0].when.at_most",
            "9 is outside the possible values 1–5, so this condition is always or never true",
        ),
        (
            "talking_points[1].when.below",
            "120 is outside the possible values 0–100, so this condition is always or never true",
        ),
    ]


def test_instrument_flags_may_not_shadow_built_in_ones_or_depend_on_flags(minimal):
    message = {"en": "x", "fr": "x"}
    minimal["flags"] = [
        {"code": "drop", "when": {"overall": True, "below": 50}, "message": message},
        {"code": "again", "when": {"flag": "ceiling"}, "message": message},
    ]

    assert errors_of(minimal) == [
        ("flags[0].code", "'drop' is a built-in flag; choose another code"),
        ("flags[1].when.flag", "a flag cannot depend on another flag"),
    ]


def test_not_applicable_needs_room_to_be_filled_in(minimal):
    minimal["scale"]["not_applicable"] = {"en": "N/A", "fr": "S.O."}

    assert errors_of(minimal) == [
        (
            "scoring.max_missing",
            "the scale offers 'does not apply' but max_missing is 0, so any such answer would "
            "leave the response unscored; set how many can be filled in",
        )
    ]


def test_max_missing_leaves_at_least_one_answer(minimal):
    minimal["scoring"]["max_missing"] = 4

    assert errors_of(minimal) == [
        (
            "scoring.max_missing",
            "must be below the number of items (4): a response needs at least one answer",
        )
    ]


def test_yaml_syntax_error_gives_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\nitems: [a, b\nversion: 1\n", encoding="utf-8")

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    [(file, where, message)] = caught.value.errors
    assert (file, where) == (str(path), "line 3, column 8")
    assert message.startswith("not valid YAML: ")


@pytest.mark.parametrize(("text", "meaning"), [
    ("id: x\ntitle:\n\ten: Visit\n", "YAML indents with spaces, not tabs"),
    ("id: x\ntitle:\n  en: Visit\n    fr: Visite\n",
     "a text holding ': ' needs quotes around it, or a line is indented further than the "
     "one before"),
    ("id: x\ntitle:\n    en: Visit\n  fr: Visite\n",
     "a line is indented more or less than the lines around it"),
])
def test_the_usual_yaml_slips_are_said_plainly(tmp_path, text, meaning):
    path = tmp_path / "slip.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    [(_, where, message)] = caught.value.errors
    assert where.startswith("line ")
    assert message.endswith(f"; usually this means {meaning}")


def test_an_unclosed_brace_names_the_line_where_it_opened(tmp_path):
    path = tmp_path / "brace.yaml"
    path.write_text(
        "id: x\ntitle: {en: Visit check-in, fr: Retour\n\nintro: {en: Hello}\n", encoding="utf-8"
    )

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    [(file, where, message)] = caught.value.errors
    assert (file, where) == (str(path), "line 4, column 6")
    assert message == (
        "not valid YAML: expected ',' or '}', but got ':' "
        "(while parsing a flow mapping that starts at line 2, column 8)"
    )


def test_a_key_given_twice_is_an_error_not_a_silent_overwrite(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("id: x\ntitle:\n  en: One\n  en: Two\n", encoding="utf-8")

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    assert caught.value.errors == [
        (str(path), "line 4, column 3", "not valid YAML: key 'en' is given twice (first on line 3)")
    ]


def test_unquoted_yaml_boolean_key_gets_a_hint(tmp_path, minimal):
    path = tmp_path / "on.yaml"
    text = yaml.safe_dump(minimal, allow_unicode=True)
    path.write_text(text + "bands:\n  on: raw\n  ranges: []\n", encoding="utf-8")

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    paths = {path: message for _, path, message in caught.value.errors}
    assert paths["bands.True"].startswith("unknown field")
    assert paths["bands.True"].endswith('put it in quotes, as in "no")')


HINT = '(YAML reads unquoted yes/no/on/off as true/false: put it in quotes, as in "no")'


def test_unquoted_no_in_languages_gets_the_quoting_hint(tmp_path, minimal):
    path = tmp_path / "no.yaml"
    text = yaml.safe_dump(minimal, allow_unicode=True).replace("- fr\n", "- fr\n- no\n", 1)
    path.write_text(text, encoding="utf-8")

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    paths = {path: message for _, path, message in caught.value.errors}
    assert paths["languages[2]"] == f"Not a valid string. {HINT}"


def test_unquoted_no_as_a_text_key_gets_the_quoting_hint(tmp_path, minimal):
    path = tmp_path / "no.yaml"
    text = yaml.safe_dump(minimal, allow_unicode=True)
    path.write_text(text.replace("\ntitle:\n", "\ntitle:\n  no: Mini\n", 1), encoding="utf-8")

    with pytest.raises(InstrumentError) as caught:
        load_instrument(path)

    paths = {path: message for _, path, message in caught.value.errors}
    assert paths["title.False"] == f"not a valid key: Not a valid string. {HINT}"


def test_document_must_be_a_mapping():
    assert errors_of(["id", "x"]) == [("", "the document must be a mapping of fields")]


def test_the_readme_example_is_a_valid_instrument():
    readme = (Path(questionnaires.__file__).parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]

    instrument = instrument_from_document(yaml.safe_load(example), "README.md")

    assert instrument.id == "my-checkin"
    assert [rule.id for rule in instrument.talking_points] == ["drop", "goals-low", "pressure-low"]
