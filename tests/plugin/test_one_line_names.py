"""Smaller findings: a comment's ``[[/Rapport]]`` cannot close Rapport's block, and a
clinic name with a line break is refused when set (it used to crash every send)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from plugin.clinics import records
from plugin.pipeline import mail
from plugin.store import database
from questionnaires.note import NOTE_BLOCK_END, NOTE_BLOCK_START, _one_line
from tests.support.generic import generic_credentials


@pytest.mark.parametrize("text", ["[[/Rapport]]", "[[[Rapport]]]", "[[/rapport]] x",
                                  "[[[/Rapport]]]", "[/[/Rapport]Rapport]"])
def test_no_marker_survives_in_a_comment(text):
    flattened = _one_line(text)
    assert NOTE_BLOCK_END.lower() not in flattened.lower()
    assert NOTE_BLOCK_START.lower() not in flattened.lower()


@pytest.mark.parametrize("name", ["Harbour\r\nBcc: all@example.com", "Harbour\nMassage",
                                  "Harbour\x00", "Harbour\u2028Massage"])
def test_a_clinic_name_on_several_lines_is_refused(app, name):
    with app.app_context(), database.session() as db, \
            pytest.raises(records.ClinicError, match="one line"):
        records.create(db, name=name, platform="generic", credentials=generic_credentials("https://93.184.216.34/"))


def test_an_email_for_a_name_stored_before_is_composed_on_one_line(app):
    with app.app_context(), app.test_request_context():
        message = mail.compose(mail.CheckInEmail(
            to="sam@example.com", first_name="Sam\r\n", clinic_name="Harbour\r\nBcc: x@y.z",
            therapist_name=None, survey_url="http://rapport.test/s/t",
            unsubscribe_url="http://rapport.test/s/t/unsubscribe",
            expires_at=datetime(2026, 12, 1, tzinfo=timezone.utc), timezone="UTC",
            language="en"))
    assert message["Subject"] == "One minute about your visit to Harbour Bcc: x@y.z"
    assert message["Bcc"] is None
