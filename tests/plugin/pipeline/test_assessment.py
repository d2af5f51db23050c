"""The instrument engine wired into the loop: languages, the instrument policy, a
licensed instrument, and flags and talking points from a client's own history."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from plugin.clinics import records as clinics
from plugin.clinics import settings
from plugin.pipeline import instruments
from plugin.store import database as storage
from plugin.store.models import CheckIn
from tests.support.rapport import ROOT
from tests.support.survey import answer, answers_for, survey_path, text_of

LICENSED = ROOT / "questionnaires" / "licensed"


def last_instrument(app):
    with app.app_context(), storage.session() as db:
        invitation = db.scalars(select(CheckIn).order_by(CheckIn.id.desc())).first()
        return instruments.get(invitation.instrument_id)


def instrument(app, instrument_id: str):
    with app.app_context():
        return instruments.get(instrument_id)


def configure(app, generic_clinic: dict, **changes) -> None:
    with app.app_context(), storage.session() as db:
        found = clinics.by_key(db, generic_clinic["key"])
        language = changes.pop("language", None)
        if language:
            clinics.set_locale(found, language=language)
        found.settings = settings.updated(found.settings, **changes)


class Visits:
    """A client's visits, one after the other: completed, emailed, answered."""

    def __init__(self, app, web, generic_clinic, deliver_generic, drain, mailbox,
                 callback_receiver):
        self.app, self.client, self.clinic = app, web, generic_clinic
        self.deliver, self.drain, self.mailbox = deliver_generic, drain, mailbox
        self.receiver = callback_receiver
        self.count = 0

    def complete(self, **event) -> None:
        self.count += 1
        assert self.deliver("appointment.completed", appointment_id=f"A-{self.count}",
                            **event).status_code == 202
        self.drain()

    def answer(self, value=None, comment: str = "", **overrides) -> dict:
        instrument = last_instrument(self.app)
        response = answer(self.client, survey_path(self.mailbox.messages[-1]),
                          answers_for(instrument, value, **overrides), comment)
        assert response.status_code == 200, response.get_data(as_text=True)
        self.drain()
        call = self.receiver.received[-1]
        return Webhook(self.clinic["callback_secret"]).verify(call.body, call.headers)["data"]


@pytest.fixture
def client_visits(app, web, generic_clinic, deliver_generic, drain, mailbox, callback_receiver):
    configure(app, generic_clinic, timing={"quiet_days": 0})
    return Visits(app, web, generic_clinic, deliver_generic, drain, mailbox, callback_receiver)


@pytest.mark.parametrize("locale, subject, button, title", [
    ("fr", "Une minute pour nous parler de votre visite chez Harbour Massage",
     "Envoyer mes réponses", "Retour sur votre séance"),
    ("es-MX", "Un minuto sobre su visita a Harbour Massage", "Enviar mis respuestas",
     "Opinión sobre su sesión"),
    ("de", "One minute about your visit to Harbour Massage", "Send my answers",
     "Visit check-in"),
])
def test_email_and_survey_speak_the_clients_language(web, client_visits, mailbox, locale, subject,
                                                     button, title):
    client_visits.complete(locale=locale)
    (message,) = mailbox.messages
    assert message["Subject"] == subject
    page = web.get(survey_path(message)).get_data(as_text=True)
    assert button in page and title in page
    assert f'<html lang="{locale[:2] if locale != "de" else "en"}">' in page


def test_the_note_is_in_the_clinics_language(app, generic_clinic, client_visits):
    configure(app, generic_clinic, language="fr")
    client_visits.complete(locale="en")
    data = client_visits.answer(4)
    assert data["language"] == "fr"
    assert "Global : 75/100" in data["note"]
    assert "Retour sur votre séance" in data["note"]  # the instrument's French title
    assert "Overall" not in data["note"]
    checkin = instrument(app, "rapport-checkin")
    for point in data["talking_points"]:
        assert point in [rule.text["fr"] for rule in checkin.talking_points]


def test_early_visits_get_the_check_in_and_later_ones_the_pulse(app, web, client_visits, mailbox):
    for _ in range(3):
        client_visits.complete()
        assert last_instrument(app).id == "rapport-checkin"
        client_visits.answer(5)
    client_visits.complete()
    pulse = last_instrument(app)
    assert pulse.id == "rapport-pulse"
    page = web.get(survey_path(mailbox.messages[-1])).get_data(as_text=True)
    assert 'class="scale points-11 line"' in page  # a 0–10 line: one row, two on a phone
    for label in (pulse.localized("en").points[0].label, pulse.localized("en").points[-1].label):
        assert label in page


def test_history_raises_a_drop_flag_and_its_talking_point_comes_first(app, client_visits):
    for _ in range(3):
        client_visits.complete()
        client_visits.answer(5)
    client_visits.complete()
    data = client_visits.answer(4, comment="Felt rushed today.")
    codes = [flag["code"] for flag in data["flags"]]
    assert "drop" in codes
    assert data["trend"]["values"][:3] == [100.0, 100.0, 100.0]
    assert data["trend"]["from_baseline"] < -10
    assert 1 <= len(data["talking_points"]) <= 3
    # Every subscale fell by as much (100 → 40): the drop names the first, and its point
    # is that subscale's.
    drop = next(flag for flag in data["flags"] if flag["code"] == "drop")
    assert drop["detail"]["subscale"] == "goal"
    pulse = instrument(app, "rapport-pulse")
    narrowed = next(rule for rule in pulse.talking_points
                    if rule.when.target == "drop" and rule.when.subscale == "goal")
    assert data["talking_points"][0] == narrowed.text["en"]
    assert "Felt rushed today." in data["note"]


def test_a_first_low_on_the_pulse_after_middling_check_ins(app, client_visits):
    # 50 on the check-in sits in its "some concerns" band (its lowest ends at 50); 50 on
    # the pulse is in the pulse's lowest band (up to 60): the client's first low score.
    for _ in range(3):
        client_visits.complete()
        assert client_visits.answer(3)["scores"]["overall"] == 50.0
    client_visits.complete()
    data = client_visits.answer(5)
    assert data["instrument"]["id"] == "rapport-pulse"
    assert data["scores"]["overall"] == 50.0
    assert "first_low" in [flag["code"] for flag in data["flags"]]
    client_visits.complete()
    again = client_visits.answer(5)
    assert "first_low" not in [flag["code"] for flag in again["flags"]]


def test_all_answers_at_the_top_prompt_an_open_question(client_visits):
    client_visits.complete()
    data = client_visits.answer(5)
    assert "ceiling" in [flag["code"] for flag in data["flags"]]
    assert data["talking_points"], "a ceiling asks for an open question, not 'perfect'"


@pytest.fixture
def wai_sr_dir(tmp_path):
    """A clinic's licensed WAI-SR file: the template with its placeholders filled in."""
    folder = tmp_path / "licensed"
    folder.mkdir()
    text = (LICENSED / "wai-sr.template.yaml").read_text()
    text = re.sub(r"<<[^<>]*>>", "licensed wording (test copy)", text)
    (folder / "wai-sr.yaml").write_text(text)
    return folder


def test_a_licensed_instrument_is_chosen_rendered_and_scored_by_hand(
        app_factory, wai_sr_dir, generic_clinic_factory, mailbox, callback_receiver):
    from plugin.tasks import worker
    from tests.support.generic import event_body, sign_generic, webhook_path

    app = app_factory(QUESTIONNAIRES_DIR=str(wai_sr_dir))
    target = generic_clinic_factory()
    configure(app, target, instrument="wai-sr")
    test_client = app.test_client()
    body = event_body()
    test_client.post(webhook_path(target), data=body, headers=sign_generic(body, target))
    with app.app_context():
        worker.drain(forking=False)
    page = test_client.get(survey_path(mailbox.messages[0])).get_data(as_text=True)
    assert page.count('<fieldset class="item') == 12
    # Task 1,2,10,12 · Goal 4,6,8,11 · Bond 3,5,7,9; answers 1..12 mapped onto 1–5.
    answers = {f"wai-{n}": str((n - 1) % 5 + 1) for n in range(1, 13)}
    answer(test_client, survey_path(mailbox.messages[0]), answers)
    with app.app_context():
        worker.drain(forking=False)
    data = json.loads(callback_receiver.received[-1].body)["data"]
    values = {n: (n - 1) % 5 + 1 for n in range(1, 13)}
    task = sum(values[n] for n in (1, 2, 10, 12))
    goal = sum(values[n] for n in (4, 6, 8, 11))
    bond = sum(values[n] for n in (3, 5, 7, 9))
    scores = data["scores"]
    assert data["instrument"]["id"] == "wai-sr"
    assert (scores["subscales"]["task"]["raw"], scores["subscales"]["goal"]["raw"],
            scores["subscales"]["bond"]["raw"]) == (task, goal, bond)
    assert (task, goal, bond) == (10, 9, 14)  # worked by hand from the mapping above
    assert scores["overall_raw"] == 33
    assert scores["overall"] == 43.8  # (33 − 12) / (60 − 12) × 100 = 43.75, half up


def test_a_licensed_template_is_never_loaded(app_factory, tmp_path):
    folder = tmp_path / "licensed"
    folder.mkdir()
    shutil.copy(LICENSED / "wai-sr.template.yaml", folder)
    app = app_factory(QUESTIONNAIRES_DIR=str(folder))
    with app.app_context():
        assert "wai-sr" not in instruments.registry()


def test_the_email_never_names_the_instrument_or_its_items(app, client_visits, mailbox):
    client_visits.complete()
    text = text_of(mailbox.messages[0])
    for item in instrument(app, "rapport-checkin").localized("en").items:
        assert item.text not in text
