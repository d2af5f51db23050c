"""Instrument files in a running Rapport: a clinic's broken or clashing file is skipped
and reported, and everything else keeps working; a clinic whose chosen instrument is
broken gets the shipped default; the form's language is the one its items are in."""

from __future__ import annotations

import json
import logging
import re
import shutil

import pytest
from sqlalchemy import select

from plugin.pipeline import instruments
from plugin.store import database as storage
from plugin.store.models import CheckIn, Response
from tests.support.rapport import ROOT
from tests.support.survey import answer, answers_for, survey_path

SHIPPED = ROOT / "questionnaires" / "instruments"
LICENSED = ROOT / "questionnaires" / "licensed"


def filled_wai_sr() -> str:
    """The WAI-SR template as a licensed clinic fills it in."""
    text = (LICENSED / "wai-sr.template.yaml").read_text(encoding="utf-8")
    return re.sub(r"<<[^<>]*>>", "licensed wording (test copy)", text)


@pytest.fixture
def folder(tmp_path):
    made = tmp_path / "clinic-instruments"
    made.mkdir()
    return made


@pytest.fixture
def broken_folder(folder):
    """A good licensed file, one with a YAML mistake, one reusing a shipped id."""
    (folder / "wai-sr.yaml").write_text(filled_wai_sr(), encoding="utf-8")
    (folder / "broken.yaml").write_text("id: broken\ntitle: {en: Broken\nversion: 1\n",
                                        encoding="utf-8")
    shutil.copy(SHIPPED / "rapport-pulse.yaml", folder / "our-pulse.yaml")
    return folder


def run_visit(app, generic_clinic: dict, **event) -> None:
    from plugin.tasks import worker
    from tests.support.generic import event_body, sign_generic, webhook_path

    body = event_body(**event)
    response = app.test_client().post(webhook_path(generic_clinic), data=body,
                                      headers=sign_generic(body, generic_clinic))
    assert response.status_code == 202
    with app.app_context():
        worker.drain(forking=False)


def drain(app) -> None:
    from plugin.tasks import worker

    with app.app_context():
        worker.drain(forking=False)


def invitation_instrument(app) -> str:
    with app.app_context(), storage.session() as db:
        return db.scalars(select(CheckIn.instrument_id).order_by(CheckIn.id.desc())).first()


def test_a_broken_clinic_file_does_not_stop_shipped_check_ins(
        app_factory, broken_folder, generic_clinic_factory, mailbox, callback_receiver, caplog):
    caplog.set_level(logging.ERROR, logger="plugin.instruments")
    app = app_factory(QUESTIONNAIRES_DIR=str(broken_folder))
    clinic = generic_clinic_factory()

    run_visit(app, clinic)
    assert invitation_instrument(app) == "rapport-checkin"
    client = app.test_client()
    page = client.get(survey_path(mailbox.messages[0]))
    assert page.status_code == 200
    with app.app_context():
        checkin = instruments.get("rapport-checkin")
    assert answer(client, survey_path(mailbox.messages[0]),
                  answers_for(checkin)).status_code == 200
    drain(app)

    delivered = json.loads(callback_receiver.received[-1].body)["data"]
    assert delivered["instrument"]["id"] == "rapport-checkin"
    with app.app_context():
        assert "wai-sr" in instruments.registry()  # the good clinic file still loads
        assert instruments.get("rapport-pulse").path == SHIPPED / "rapport-pulse.yaml"
        problems = instruments.problems()
    assert problems == [
        f"{broken_folder / 'broken.yaml'}: line 3, column 8: not valid YAML: expected ',' or "
        "'}', but got ':' (while parsing a flow mapping that starts at line 2, column 8)",
        f"{broken_folder / 'our-pulse.yaml'}: id: 'rapport-pulse' is already the id of "
        f"{SHIPPED / 'rapport-pulse.yaml'}; ids must be unique",
    ]
    logged = [r.getMessage() for r in caplog.records if "instruments.file-skipped" in r.msg]
    assert len(logged) == 2
    assert str(broken_folder / "broken.yaml") in logged[0]


def test_health_names_the_skipped_files_and_stays_up(app_factory, broken_folder):
    app = app_factory(QUESTIONNAIRES_DIR=str(broken_folder), HEALTH_TOKEN="operator-token")
    response = app.test_client().get("/healthz", headers={"X-Health-Token": "operator-token"})
    assert response.status_code == 200  # still serving: clinics fall back to shipped ones
    skipped = response.get_json()["instrument_files_skipped"]
    assert [line.split(":")[0] for line in skipped] == [
        str(broken_folder / "broken.yaml"), str(broken_folder / "our-pulse.yaml")]


def test_a_good_folder_has_no_problems(app_factory, folder):
    (folder / "wai-sr.yaml").write_text(filled_wai_sr(), encoding="utf-8")
    app = app_factory(QUESTIONNAIRES_DIR=str(folder))
    with app.app_context():
        assert instruments.problems() == []


def test_a_missing_clinic_folder_is_a_problem_not_an_outage(app_factory, tmp_path):
    app = app_factory(QUESTIONNAIRES_DIR=str(tmp_path / "gone"))
    with app.app_context():
        assert "rapport-checkin" in instruments.registry()
        assert instruments.problems() == [
            f"{tmp_path / 'gone'}: is not a folder (check RAPPORT_QUESTIONNAIRES_DIR, or "
            "QUESTIONNAIRES_DIR in rapport.cfg)"
        ]


def test_a_clinic_whose_chosen_instrument_is_broken_gets_the_shipped_default(
        app_factory, folder, generic_clinic_factory, mailbox, caplog):
    # The template copied without its wording: refused, so "wai-sr" does not exist.
    shutil.copy(LICENSED / "wai-sr.template.yaml", folder / "wai-sr.yaml")
    caplog.set_level(logging.ERROR, logger="plugin.instruments")
    app = app_factory(QUESTIONNAIRES_DIR=str(folder))
    clinic = generic_clinic_factory(instrument="wai-sr")

    run_visit(app, clinic)

    assert invitation_instrument(app) == "rapport-checkin"
    page = app.test_client().get(survey_path(mailbox.messages[0])).get_data(as_text=True)
    assert "paste the licensed wording" not in page
    fallback = [r for r in caplog.records if "instruments.fallback" in r.msg]
    assert [(r.instrument, r.used) for r in fallback] == [("wai-sr", "rapport-checkin")]
    with app.app_context():
        assert any("items[0].text.en: still holds the template's placeholder" in line
                   for line in instruments.problems())


def test_a_link_whose_instrument_file_broke_since_still_opens(
        app_factory, tmp_path, folder, generic_clinic_factory, mailbox):
    (folder / "wai-sr.yaml").write_text(filled_wai_sr(), encoding="utf-8")
    before = app_factory(QUESTIONNAIRES_DIR=str(folder))
    clinic = generic_clinic_factory(instrument="wai-sr")
    run_visit(before, clinic)
    assert invitation_instrument(before) == "wai-sr"
    # The admin edits the file and breaks it; Rapport restarts with it.
    broken = tmp_path / "edited"
    broken.mkdir()
    (broken / "wai-sr.yaml").write_text(filled_wai_sr().replace("max: 5", "max: five"),
                                        encoding="utf-8")
    after = app_factory(QUESTIONNAIRES_DIR=str(broken))
    client = after.test_client()

    page = client.get(survey_path(mailbox.messages[0]))

    assert page.status_code == 200
    assert "Visit check-in" in page.get_data(as_text=True)
    with after.app_context():
        checkin = instruments.get("rapport-checkin")
    assert answer(client, survey_path(mailbox.messages[0]),
                  answers_for(checkin)).status_code == 200
    with after.app_context(), storage.session() as db:
        assert db.scalar(select(Response.instrument_id)) == "rapport-checkin"


def test_a_form_without_the_clients_language_says_which_language_it_is_in(
        app_factory, folder, generic_clinic_factory, mailbox):
    (folder / "wai-sr.yaml").write_text(filled_wai_sr(), encoding="utf-8")
    app = app_factory(QUESTIONNAIRES_DIR=str(folder))
    clinic = generic_clinic_factory(instrument="wai-sr")
    run_visit(app, clinic, locale="es")

    html = app.test_client().get(survey_path(mailbox.messages[0])).get_data(as_text=True)

    # The items are English (the licensed file has no Spanish); Rapport's words are not.
    assert '<html lang="en">' in html
    assert "licensed wording (test copy)" in html
    assert '<button type="submit" lang="es">Enviar mis respuestas</button>' in html


def test_a_form_in_the_clients_language_needs_no_second_lang(
        app_factory, generic_clinic_factory, mailbox):
    app = app_factory()
    run_visit(app, generic_clinic_factory(), locale="es")

    html = app.test_client().get(survey_path(mailbox.messages[0])).get_data(as_text=True)

    assert '<html lang="es">' in html
    assert '<button type="submit">Enviar mis respuestas</button>' in html
    assert 'lang="en"' not in html


def test_choosing_a_broken_instrument_names_the_skipped_file(app_factory, folder):
    from plugin.clinics import settings

    shutil.copy(LICENSED / "wai-sr.template.yaml", folder / "wai-sr.yaml")
    app = app_factory(QUESTIONNAIRES_DIR=str(folder))

    with app.app_context(), pytest.raises(settings.SettingsError) as refused:
        settings.updated({}, instrument="wai-sr")

    assert str(refused.value) == (
        "no instrument 'wai-sr'; known: rapport-checkin, rapport-pulse (skipped as broken: "
        f"{folder / 'wai-sr.yaml'}; run `rapport questionnaires check` to see why)"
    )
