"""An admin sends themselves a test: a real email, the note on the thank-you page,
nothing written back."""

from __future__ import annotations

from sqlalchemy import func, select

from plugin.clinics import records as clinics
from plugin.pipeline import instruments
from plugin.pipeline import sending as invitations
from plugin.store import database as storage
from plugin.store.models import WriteBack
from tests.support.survey import answer, answers_for, survey_path


def clinic_id_of(generic_clinic: dict) -> int:
    """The database id of a clinic made by the fixtures (inside an app context)."""
    with storage.session() as db:
        return clinics.by_key(db, generic_clinic["key"]).id


def test_send_test_emails_the_admin_and_shows_the_note(app, web, generic_clinic, mailbox,
                                                       callback_receiver,
                                                        drain):
    with app.app_context():
        clinic_id = clinic_id_of(generic_clinic)
        sent = invitations.send_test(clinic_id, "admin@harbour.example")
        instrument = instruments.get(sent.instrument_id)
    assert sent.status == "sent" and sent.test
    (message,) = mailbox.messages
    assert message["To"] == "admin@harbour.example"

    page = answer(web, survey_path(message), answers_for(instrument, value=4))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "This was a test" in html
    assert "will read them" not in html  # one message: a test is written nowhere
    assert "[Rapport]" in html and "[/Rapport]" in html
    drain()
    assert callback_receiver.received == []
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(func.count(WriteBack.id))) == 0


def test_send_test_reports_a_mail_server_that_refuses(app, generic_clinic, mailbox):
    mailbox.refuse_with.append("550 5.1.1 No such user")
    with app.app_context():
        clinic_id = clinic_id_of(generic_clinic)
        sent = invitations.send_test(clinic_id, "nobody@harbour.example")
    assert sent.status == "failed"
    assert "550" in sent.reason


def test_a_failed_test_leaves_the_clinics_health_alone(app, generic_clinic, mailbox):
    """send-test reported the failure at once; clinic list counts the clients' check-ins
    and does not keep the clinic at ATTENTION for a week over an admin's test."""
    from plugin.clinics import health
    from plugin.store.models import Clinic

    mailbox.refuse_with.append("550 5.1.1 No such user")
    with app.app_context():
        clinic_id = clinic_id_of(generic_clinic)
        assert invitations.send_test(clinic_id, "typo@harbour.example").status == "failed"
        assert invitations.send_test(clinic_id, "admin@harbour.example").status == "sent"
        with storage.session() as db:
            summary = health.clinic_summary(db, db.get(Clinic, clinic_id))
    assert "last_check_in_problem" not in summary
    assert summary["check_ins_last_7_days"] == {}


def test_send_test_reports_a_mail_server_out_of_reach(app_factory, generic_clinic_factory):
    """No mail server listening (a temporary failure for a client's check-in): the admin
    is told at once, and the test is not sent later by the sweeper."""
    import socket
    from datetime import datetime, timedelta, timezone

    from plugin.pipeline import sweeper

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app = app_factory(SMTP_PORT=closed_port)
    clinic = generic_clinic_factory()
    with app.app_context():
        clinic_id = clinic_id_of(clinic)
        sent = invitations.send_test(clinic_id, "admin@harbour.example")
        assert sent.status == "failed"
        assert "cannot reach the mail server" in sent.reason
        later = sweeper.sweep(datetime.now(timezone.utc) + timedelta(hours=1))
    assert later["check_ins"] == 0
