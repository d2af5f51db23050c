"""Every page a client can land on says something useful: Rapport's own address, an
address it does not have, a closed link (with how to reach the clinic), and the way
back after unsubscribing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from plugin.clinics import records, settings
from plugin.store import database
from plugin.store.models import CheckIn, Clinic, OptOut, OptOutAddress
from tests.support.survey import csrf_token, survey_path


def test_rapports_own_address_says_what_this_service_is(web):
    page = web.get("/", headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "questionnaires" in text and 'lang="fr"' in text
    assert "Not Found" not in text


def test_an_address_rapport_does_not_have_gets_a_plain_page(web):
    page = web.get("/wp-login.php")
    assert page.status_code == 404
    text = page.get_data(as_text=True)
    assert "There is no page here" in text and 'href="/"' in text
    assert "Not Found" not in text  # not the framework's bare page


def _set_contact(app, generic_clinic: dict, contact: str) -> None:
    with app.app_context(), database.session() as db:
        found = records.by_key(db, generic_clinic["key"])
        found.settings = settings.updated(found.settings, sender={"contact": contact})


def test_a_closed_link_says_how_to_reach_the_clinic(app, web, generic_clinic, deliver_generic,
                                                    drain, mailbox):
    _set_contact(app, generic_clinic, "Call us on 020 7946 0000")
    deliver_generic()
    drain()
    path = survey_path(mailbox.messages[0])
    with app.app_context(), database.session() as db:
        db.execute(update(CheckIn).values(expires_at=datetime.now(timezone.utc)
                                          - timedelta(minutes=1)))
    page = web.get(path)
    assert page.status_code == 410
    text = page.get_data(as_text=True)
    assert "This check-in has closed" in text
    assert "To reach Harbour Massage: Call us on 020 7946 0000" in text


def test_a_contact_line_is_one_line():
    try:
        settings.updated({}, sender={"contact": "Call us\r\nBcc: everyone@example.com"})
    except settings.SettingsError as error:
        assert "one line" in str(error)
    else:
        raise AssertionError("a contact line with a line break was kept")


def test_unsubscribing_has_a_way_back(app, web, generic_clinic, deliver_generic, drain, mailbox):
    deliver_generic(appointment_id="A-1")
    drain()
    path = survey_path(mailbox.messages[0])
    confirm = web.get(f"{path}/unsubscribe").get_data(as_text=True)
    assert f'href="{path}"' in confirm and "No, keep receiving them" in confirm
    done = web.post(f"{path}/unsubscribe")
    assert done.status_code == 200
    text = done.get_data(as_text=True)
    assert "You are unsubscribed" in text and f'action="{path}/resubscribe"' in text
    with app.app_context(), database.session() as db:
        assert db.scalar(select(func.count(OptOut.id))) == 1
        assert db.scalar(select(func.count(OptOutAddress.id))) == 1
    back = web.post(f"{path}/resubscribe", data={"csrf_token": csrf_token(text)})
    assert back.status_code == 200
    assert "You will receive check-ins again" in back.get_data(as_text=True)
    with app.app_context(), database.session() as db:
        assert db.scalar(select(func.count(OptOut.id))) == 0
        assert db.scalar(select(func.count(OptOutAddress.id))) == 0
        # The next visit's check-in is not held back by the quiet days of the last one.
        clinic_row = db.scalar(select(Clinic))
        clinic_row.settings = settings.updated(clinic_row.settings, timing={"quiet_days": 0})
        db.execute(update(CheckIn).values(status="expired"))
    deliver_generic(appointment_id="A-2")
    drain()
    assert len(mailbox.messages) == 2


def test_the_way_back_needs_the_pages_form(web, generic_clinic, deliver_generic, drain, mailbox):
    """A bare POST (a link scanner, another site) cannot subscribe anyone again."""
    deliver_generic()
    drain()
    path = survey_path(mailbox.messages[0])
    web.post(f"{path}/unsubscribe")
    assert web.post(f"{path}/resubscribe").status_code == 400
