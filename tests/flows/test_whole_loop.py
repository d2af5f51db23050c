"""The whole loop with real Redis, SMTP and HTTP: webhook → email → answers → callback."""

from __future__ import annotations

from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from plugin.pipeline.sending import send_check_in
from plugin.store import database as storage
from plugin.store.identity import installation_id
from plugin.store.models import WriteBack, WriteBackAttempt
from tests.support.generic import event_body, sign_generic, webhook_path
from tests.support.rows import instrument_of, invitations
from tests.support.survey import answer, answers_for, survey_path


def test_completed_appointment_gets_one_email_and_answers_come_back_signed(
        app, web, generic_clinic, deliver_generic, drain, mailbox, callback_receiver):
    assert deliver_generic("appointment.completed").status_code == 202
    drain()

    assert len(mailbox.messages) == 1
    email = mailbox.messages[0]
    assert email["To"] == "sam@example.com"
    path = survey_path(email)

    instrument = instrument_of(app)
    response = answer(web, path, answers_for(instrument, value=4),
                      comment="More time on my shoulders, please.")
    assert response.status_code == 200
    assert "Thank you" in response.get_data(as_text=True)
    drain()

    assert len(callback_receiver.received) == 1
    call = callback_receiver.received[0]
    event = Webhook(generic_clinic["callback_secret"]).verify(call.body, call.headers)
    assert event["type"] == "client.alliance_updated"
    data = event["data"]
    assert data["client"] == {"id": "C-7"}
    assert data["appointment"] == {"id": "A-100"}
    assert data["therapist"] == {"id": "T-2"}
    assert data["instrument"] == {"id": instrument.id, "version": instrument.version}
    assert data["scores"]["overall"] == 75.0  # every answer 4 on 1–5
    assert set(data["scores"]["subscales"]) == {s.id for s in instrument.subscales}
    assert data["trend"]["values"] == [75.0]
    assert data["comment"] == "More time on my shoulders, please."
    assert data["note"].startswith("[Rapport]")
    assert "Dana" in data["note"]
    assert isinstance(data["talking_points"], list)
    with app.app_context():
        assert call.headers["Webhook-Id"] == f"rapport-wb-{installation_id()}-1"


def test_same_webhook_delivered_five_times_sends_one_email(web, generic_clinic, drain, mailbox):
    body = event_body()
    statuses = [web.post(webhook_path(generic_clinic), data=body,
                         headers=sign_generic(body, generic_clinic,
                                                 msg_id="msg_retry")).status_code
                for _ in range(5)]
    assert statuses == [202, 200, 200, 200, 200]
    drain()
    assert len(mailbox.messages) == 1


def test_every_job_run_twice_sends_one_email_and_one_callback(
        app, web, generic_clinic, deliver_generic, drain, mailbox, callback_receiver):
    from plugin.pipeline.ingest import ingest_events
    from plugin.pipeline.write_back import deliver_write_back

    deliver_generic("appointment.completed")
    with app.app_context():
        ingest_events([1])
        ingest_events([1])
    drain()
    (invitation,) = invitations(app)
    with app.app_context():
        send_check_in(invitation.id)
        send_check_in(invitation.id)
    assert len(mailbox.messages) == 1

    answer(web, survey_path(mailbox.messages[0]), answers_for(instrument_of(app)))
    with app.app_context():
        deliver_write_back(1)
        deliver_write_back(1)
    drain()
    assert len(callback_receiver.received) == 1
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(WriteBack.status)) == "delivered"
        assert len(db.scalars(select(WriteBackAttempt)).all()) == 1


def test_same_visit_reported_completed_twice_is_one_email(deliver_generic, drain, mailbox):
    deliver_generic("appointment.completed")
    deliver_generic("appointment.completed")
    drain()
    assert len(mailbox.messages) == 1


def test_cancelled_and_no_show_appointments_get_no_email(app, deliver_generic, drain, mailbox):
    deliver_generic("appointment.cancelled", appointment_id="A-1")
    deliver_generic("appointment.no_show", appointment_id="A-2", client_id="C-8")
    drain()
    assert mailbox.messages == []
    assert invitations(app) == []


def test_cancellation_cancels_the_pending_invitation(app, generic_clinic_factory, web, drain,
                                                     mailbox):
    target = generic_clinic_factory(timing={"send_delay_minutes": 180})
    first = event_body("appointment.completed")
    web.post(webhook_path(target), data=first, headers=sign_generic(first, target))
    drain()
    (invitation,) = invitations(app)
    assert invitation.status == "scheduled"
    later = event_body("appointment.cancelled")
    web.post(webhook_path(target), data=later, headers=sign_generic(later, target))
    drain()
    (invitation,) = invitations(app)
    assert invitation.status == "cancelled"
    assert invitation.email is None
    assert mailbox.messages == []


def test_client_who_answered_recently_is_not_asked_again(app, web, deliver_generic, drain, mailbox):
    deliver_generic("appointment.completed", appointment_id="A-1")
    drain()
    answer(web, survey_path(mailbox.messages[0]), answers_for(instrument_of(app)))
    drain()
    deliver_generic("appointment.completed", appointment_id="A-2")
    drain()
    assert len(mailbox.messages) == 1
    second = invitations(app)[1]
    assert second.status == "skipped"
    assert second.reason == "the client answered within the last 14 days"


def test_client_with_an_open_invitation_is_not_asked_again(app, deliver_generic, drain, mailbox):
    deliver_generic("appointment.completed", appointment_id="A-1")
    deliver_generic("appointment.completed", appointment_id="A-2")
    drain()
    assert len(mailbox.messages) == 1
    assert [i.status for i in invitations(app)] == ["sent", "skipped"]
    assert invitations(app)[1].reason == "the client has a check-in still open"


def test_opted_out_client_gets_nothing_more(app, web, deliver_generic, drain, mailbox):
    deliver_generic("appointment.completed", appointment_id="A-1")
    drain()
    path = survey_path(mailbox.messages[0])
    assert web.post(f"{path}/unsubscribe").status_code == 200
    deliver_generic("appointment.completed", appointment_id="A-2")
    drain()
    assert len(mailbox.messages) == 1
    assert invitations(app)[1].reason == "the client opted out"
