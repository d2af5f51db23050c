"""A clinic erases a client's data on request (CLINICAL.md: the answers are the client's)."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import func, select

from plugin.cli import main
from plugin.pipeline import instruments
from plugin.store import database as storage
from plugin.store.models import Appointment, CheckIn, InboxEvent, Response, SurveyLink, WriteBack
from tests.support.rapport import subprocess_env
from tests.support.survey import answer, answers_for, survey_path


def _counts(db, client_id):
    return {
        "appointments": db.scalar(select(func.count(Appointment.id)).where(
            Appointment.client_external_id == client_id)),
        "invitations": db.scalar(select(func.count(CheckIn.id)).where(
            CheckIn.client_external_id == client_id)),
        "responses": db.scalar(select(func.count(Response.id)).where(
            Response.client_external_id == client_id)),
    }


def test_erase_client_deletes_answers_check_ins_and_event_bodies(
        app, web, generic_clinic, deliver_generic, drain, mailbox, callback_receiver, monkeypatch):
    assert deliver_generic(appointment_id="A-1", client_id="C-7").status_code == 202
    assert deliver_generic(appointment_id="A-2", client_id="C-8", email="alex@example.com",
                           first_name="Alex").status_code == 202
    drain()
    sam = next(m for m in mailbox.messages if m["To"] == "sam@example.com")
    with app.app_context(), storage.session() as db:
        instrument = instruments.get(db.scalar(select(CheckIn.instrument_id).where(
            CheckIn.client_external_id == "C-7")))
    page = answer(web, survey_path(sam), answers_for(instrument, value=4),
                  comment="My lower back again")
    assert page.status_code == 200
    drain()

    for name, value in subprocess_env(app).items():
        if name.startswith("RAPPORT_"):
            monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["clinic", "erase-client", generic_clinic["key"], "C-7"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Erased client 'C-7': 1 answer(s), 1 check-in(s), 1 appointment(s)" in result.output

    with app.app_context(), storage.session() as db:
        assert _counts(db, "C-7") == {"appointments": 0, "invitations": 0, "responses": 0}
        assert db.scalar(select(func.count(WriteBack.id))) == 0
        bodies = [body for body in db.scalars(select(InboxEvent.body)) if body]
        assert not any(b"sam@example.com" in body for body in bodies)
        # The other client is untouched.
        assert _counts(db, "C-8") == {"appointments": 1, "invitations": 1, "responses": 0}
        assert any(b"alex@example.com" in body for body in bodies)
        assert db.scalar(select(func.count(SurveyLink.id))) == 1
    # The erased client's link no longer opens anything.
    assert web.get(survey_path(sam)).status_code == 404


def test_erase_client_names_an_unknown_clinic(app, monkeypatch):
    for name, value in subprocess_env(app).items():
        if name.startswith("RAPPORT_"):
            monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["clinic", "erase-client", "nosuch", "C-7"])
    assert result.exit_code == 1
    assert "no clinic with key 'nosuch'" in result.output
