"""Alert emails to a clinic's admins: needing reconnecting, notes failing; at most one a
day per clinic and kind."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from plugin.clinics import alerts, records
from plugin.store import database
from plugin.store.models import AdminAlert
from tests.support import clinic_data, console

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def test_admins_hear_once_a_day_that_their_clinic_needs_reconnecting(app, generic_clinic_factory,
                                                                     mailbox):
    troubled, fine = generic_clinic_factory(), generic_clinic_factory()
    console.invite(app, "dana@harbour.example", troubled["key"])
    console.invite(app, "lee@other.example", fine["key"])
    console.invite(app, "ops@rapport.example", operator=True)
    with app.app_context(), database.session() as db:
        records.mark_needs_reconnecting(records.by_key(db, troubled["key"]),
                                        "the platform refused the credentials")
    with app.app_context():
        assert alerts.alert_admins() == 1
        assert alerts.alert_admins() == 0  # again the same day: nothing
    (message,) = mailbox.messages
    assert message["To"] == "dana@harbour.example"
    assert "needs reconnecting" in message["Subject"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "the platform refused the credentials" in body
    assert f"rapport clinic rotate-secret {troubled['key']}" in body
    assert f"/admin/clinics/{troubled['key']}/health" in body

    with app.app_context(), database.session() as db:  # the next day
        db.execute(update(AdminAlert).values(day="2000-01-01"))
    with app.app_context():
        assert alerts.alert_admins() == 1


def test_notes_that_keep_failing_make_an_alert(app, generic_clinic, mailbox):
    console.invite(app, "dana@harbour.example", generic_clinic["key"])
    with app.app_context(), database.session() as db:
        clinic_id = records.by_key(db, generic_clinic["key"]).id
        first = clinic_data.answered_visit(db, clinic_id, "C-1", NOW - timedelta(days=1), 8)
        clinic_data.write_back(db, first, last_error="the receiver answered 410")
    with app.app_context():
        assert alerts.alert_admins() == 0  # one failure: on the health page, no email yet
    with app.app_context(), database.session() as db:
        second = clinic_data.answered_visit(db, clinic_id, "C-2", NOW - timedelta(days=1), 8)
        clinic_data.write_back(db, second, status="pending", attempts=2,
                               last_error="the receiver answered 503")
    with app.app_context():
        assert alerts.alert_admins() == 1
    (message,) = mailbox.messages
    assert "notes for Harbour Massage are failing" in message["Subject"]
    assert "the receiver answered 503" in message.get_body(
        preferencelist=("plain",)).get_content()
