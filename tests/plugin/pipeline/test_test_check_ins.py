"""An admin's test check-in is nobody's history: it moves no trend and raises no flag,
and a client's own history is never mixed with one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from plugin.clinics import records
from plugin.pipeline import instruments, sending
from plugin.store import database
from plugin.store.models import Response
from tests.support import clinic_data
from tests.support.survey import answer, answers_for, survey_path

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def test_a_second_test_is_not_compared_with_the_first(app, web, generic_clinic, mailbox):
    with app.app_context(), database.session() as db:
        clinic_id = records.by_key(db, generic_clinic["key"]).id
    for value in (5, 1):  # the best answers, then poor ones: a drop, were they history
        with app.app_context():
            sent = sending.send_test(clinic_id, "dana@harbour.example")
            instrument = instruments.get(sent.instrument_id)
        assert sent.status == "sent"
        page = answer(web, survey_path(mailbox.messages[-1]), answers_for(instrument, value))
        assert page.status_code == 200
    with app.app_context(), database.session() as db:
        first, second = db.scalars(select(Response).order_by(Response.id)).all()
        summary = second.result["summary"]
    assert summary["trend"]["values"] == [second.overall]  # the first test is not in it
    assert "drop" not in [flag["code"] for flag in summary["flags"]]


def test_a_test_answer_under_a_clients_id_stays_out_of_their_trend(app, generic_clinic):
    """Even one stored under a real client's id (as an older Rapport could have)."""
    with app.app_context(), database.session() as db:
        clinic_id = records.by_key(db, generic_clinic["key"]).id
        appointment = clinic_data.visit(db, clinic_id, "C-7", NOW - timedelta(days=9))
        test = clinic_data.check_in(db, appointment, sent_at=NOW - timedelta(days=9),
                                    test=True)
        clinic_data.answer(db, test, 10, NOW - timedelta(days=9))
        real = clinic_data.answered_visit(db, clinic_id, "C-7", NOW - timedelta(days=2), 4)
        summary = real.result["summary"]
    assert summary["trend"]["values"] == [real.overall]
    assert "drop" not in [flag["code"] for flag in summary["flags"]]
