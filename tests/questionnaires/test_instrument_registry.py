"""Which files a registry loads, from which folders, and how clashes are reported."""

from __future__ import annotations

import shutil

import pytest

from questionnaires import SHIPPED_DIR, InstrumentError, InstrumentRegistry, configured_dirs

LICENSED = SHIPPED_DIR.parent / "licensed"


def test_shipped_folder_holds_checkin_and_pulse(shipped):
    assert sorted(instrument.id for instrument in shipped.all()) == [
        "rapport-checkin",
        "rapport-pulse",
    ]
    assert shipped.get("rapport-pulse").path == SHIPPED_DIR / "rapport-pulse.yaml"


def test_templates_are_never_loaded():
    assert InstrumentRegistry([LICENSED]).all() == []


def test_a_later_folder_adds_the_clinics_instruments(clinic_registry, clinic_dir):
    ids = sorted(instrument.id for instrument in clinic_registry.all())

    assert ids == ["rapport-checkin", "rapport-pulse", "srs", "wai-sr"]
    assert clinic_registry.get("wai-sr").path == clinic_dir / "wai-sr.yaml"


def test_yml_files_load_too(tmp_path, clinic_dir):
    (clinic_dir / "srs.yaml").rename(clinic_dir / "srs.yml")

    assert "srs" in InstrumentRegistry([clinic_dir])


def test_duplicate_id_across_files_names_both(tmp_path):
    copy = tmp_path / "my-checkin.yaml"
    shutil.copy(SHIPPED_DIR / "rapport-checkin.yaml", copy)

    with pytest.raises(InstrumentError) as caught:
        InstrumentRegistry([SHIPPED_DIR, tmp_path])

    assert caught.value.errors == [
        (
            str(copy),
            "id",
            f"'rapport-checkin' is already the id of {SHIPPED_DIR / 'rapport-checkin.yaml'}; "
            "ids must be unique",
        )
    ]


def test_every_broken_file_is_reported_at_once(tmp_path):
    (tmp_path / "a.yaml").write_text("id: a\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("[unclosed\n", encoding="utf-8")

    with pytest.raises(InstrumentError) as caught:
        InstrumentRegistry([tmp_path])

    files = {file for file, _, _ in caught.value.errors}
    assert files == {str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")}


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(InstrumentError) as caught:
        InstrumentRegistry([tmp_path / "nowhere"])

    assert caught.value.errors == [
        (
            str(tmp_path / "nowhere"),
            "",
            "is not a folder (check RAPPORT_QUESTIONNAIRES_DIR, or QUESTIONNAIRES_DIR in "
            "rapport.cfg)",
        )
    ]


def test_skip_broken_keeps_every_good_instrument_and_lists_what_it_left_out(
    tmp_path, clinic_dir
):
    (clinic_dir / "broken.yaml").write_text("id: broken\n", encoding="utf-8")
    clash = clinic_dir / "my-pulse.yaml"
    shutil.copy(SHIPPED_DIR / "rapport-pulse.yaml", clash)

    registry = InstrumentRegistry([SHIPPED_DIR, clinic_dir], skip_broken=True)

    assert sorted(i.id for i in registry.all()) == [
        "rapport-checkin",
        "rapport-pulse",
        "srs",
        "wai-sr",
    ]
    assert registry.get("rapport-pulse").path == SHIPPED_DIR / "rapport-pulse.yaml"
    assert (
        str(clash),
        "id",
        f"'rapport-pulse' is already the id of {SHIPPED_DIR / 'rapport-pulse.yaml'}; "
        "ids must be unique",
    ) in registry.problems
    assert (str(clinic_dir / "broken.yaml"), "version", "required field is missing") in (
        registry.problems
    )
    assert {file for file, _, _ in registry.problems} == {
        str(clash),
        str(clinic_dir / "broken.yaml"),
    }


def test_skip_broken_survives_a_missing_clinic_folder(tmp_path):
    registry = InstrumentRegistry([SHIPPED_DIR, tmp_path / "nowhere"], skip_broken=True)

    assert "rapport-checkin" in registry
    assert [file for file, _, _ in registry.problems] == [str(tmp_path / "nowhere")]


def test_a_good_registry_has_no_problems(clinic_dir):
    assert InstrumentRegistry([SHIPPED_DIR, clinic_dir], skip_broken=True).problems == []


def test_unknown_id_lists_known_ones(shipped):
    with pytest.raises(
        KeyError, match="no instrument 'wai-sr' .known: rapport-checkin, rapport-pulse"
    ):
        shipped.get("wai-sr")


def test_configured_dirs_adds_the_clinic_folder_from_the_environment(tmp_path):
    assert configured_dirs({}) == [SHIPPED_DIR]
    assert configured_dirs({"RAPPORT_QUESTIONNAIRES_DIR": str(tmp_path)}) == [SHIPPED_DIR, tmp_path]
