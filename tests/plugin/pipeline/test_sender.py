"""Who a clinic's check-in emails come from: its own display name over the
installation's address (kept, for deliverability), and its own reply-to address."""

from __future__ import annotations

import pytest

from plugin.clinics import records, settings
from plugin.store import database
from tests.support.clock import drainer


def configure_sender(app, generic_clinic, **sender):
    with app.app_context(), database.session() as db:
        found = records.by_key(db, generic_clinic["key"])
        found.settings = settings.updated(found.settings, sender=sender)


def test_the_clinics_name_and_reply_to_are_on_the_email(app, generic_clinic, deliver_generic,
                                                        mailbox):
    configure_sender(app, generic_clinic, name="Harbour Front Desk",
                     reply_to="desk@harbour.example")
    assert deliver_generic().status_code == 202
    drainer(app)()
    (message,) = mailbox.messages
    assert message["From"].addresses[0].display_name == "Harbour Front Desk"
    assert message["From"].addresses[0].addr_spec == "checkin@harbour.example"
    assert message["Reply-To"] == "desk@harbour.example"


def test_without_them_the_installations_sender_stands(
        app, generic_clinic, deliver_generic, mailbox):
    configure_sender(app, generic_clinic, name="Front desk", reply_to="desk@harbour.example")
    configure_sender(app, generic_clinic, name=None, reply_to="")
    deliver_generic()
    drainer(app)()
    (message,) = mailbox.messages
    assert str(message["From"]) == "Harbour Massage <checkin@harbour.example>"
    assert message["Reply-To"] is None


@pytest.mark.parametrize("sender, message", [
    ({"name": "Front desk\r\nBcc: everyone@example.com"}, "without line breaks"),
    ({"name": "x" * 101}, "at most 100 characters"),
    ({"reply_to": "desk@harbour.example\nBcc: x@example.com"}, "is not an email address"),
    ({"reply_to": "Desk <desk@harbour.example>"}, "is not an email address"),
    ({"reply_to": "desk"}, "is not an email address"),
])
def test_a_sender_that_would_break_the_headers_is_refused(sender, message):
    with pytest.raises(settings.SettingsError, match=message):
        settings.updated({}, sender=sender)
