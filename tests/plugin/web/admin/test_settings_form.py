"""The settings form: what ``rapport clinic configure`` changes, with its checks and
messages, each message next to its field, and nothing kept when any value is refused."""

from __future__ import annotations

import re

import pytest

from plugin.clinics import records, settings
from plugin.store import database
from tests.support import console


@pytest.fixture
def signed_in(app, web, generic_clinic):
    return console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])


def page_path(generic_clinic) -> str:
    return f"/admin/clinics/{generic_clinic['key']}/settings"


def current_form(web, generic_clinic) -> dict[str, str]:
    text = web.get(page_path(generic_clinic)).get_data(as_text=True)
    fields = dict(re.findall(r'<input id="f-[^"]+" name="([^"]+)" value="([^"]*)"', text))
    for name, body in re.findall(r'<select id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</select>',
                                 text, re.S):
        fields[name] = re.search(r'<option value="([^"]+)" selected', body).group(1)
    return fields


def stored(app, generic_clinic) -> tuple:
    with app.app_context(), database.session() as db:
        found = records.by_key(db, generic_clinic["key"])
        return found.name, found.timezone, found.language, settings.effective(found.settings)


def test_the_form_shows_every_current_value(signed_in, generic_clinic):
    form = current_form(signed_in, generic_clinic)
    assert form["name"] == "Harbour Massage" and form["timezone"] == "Europe/London"
    assert form["send_delay_minutes"] == "0" and form["window_end"] == "24:00"
    assert form["early_instrument"] == "rapport-checkin" and form["early_visits"] == "3"
    assert form["drop_threshold"] == "10" and form["sender_name"] == ""
    assert len(form) == 18


def test_saving_changes_what_configure_changes(app, signed_in, generic_clinic):
    form = {**current_form(signed_in, generic_clinic), "name": "Harbour Massage & Spa",
            "timezone": "America/Toronto", "language": "fr", "send_delay_minutes": "60",
            "window_start": "08:30", "window_end": "19:00", "quiet_days": "30",
            "later_instrument": "rapport-checkin", "drop_threshold": "15",
            "sender_name": "Harbour front desk", "reply_to": "desk@harbour.example"}
    answer = console.post_form(signed_in, page_path(generic_clinic), **form)
    assert answer.status_code == 200 and "Saved." in answer.get_data(as_text=True)
    name, zone, language, shown = stored(app, generic_clinic)
    assert (name, zone, language) == ("Harbour Massage & Spa", "America/Toronto", "fr")
    assert shown["timing"]["send_delay_minutes"] == 60
    assert (shown["timing"]["window_start"], shown["timing"]["window_end"]) == ("08:30", "19:00")
    assert shown["instrument"] == {"early": "rapport-checkin", "early_visits": 3,
                                   "later": "rapport-checkin"}
    assert shown["flags"]["drop_threshold"] == 15
    assert shown["sender"] == {"name": "Harbour front desk", "reply_to": "desk@harbour.example",
                               "contact": None}


@pytest.mark.parametrize("changes, field, message", [
    ({"window_start": "20:00", "window_end": "09:00"}, "window_end", "is not after its start"),
    ({"window_start": "9am"}, "window_start", "is not a time of day"),
    ({"drop_threshold": "150"}, "drop_threshold", "between 0 and 100"),
    ({"expire_after_days": "0"}, "expire_after_days", "must stay open"),
    ({"send_delay_minutes": "-5"}, "send_delay_minutes", "cannot be negative"),
    ({"send_delay_minutes": "soon"}, "send_delay_minutes", "Give a whole number"),
    ({"quiet_days": ""}, "quiet_days", "Give a value"),
    ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
    ({"language": "de"}, "language", "no translation for"),
    ({"later_instrument": "no-such-thing"}, "later_instrument", "no instrument 'no-such-thing'"),
    ({"early_visits": "-1"}, "early_visits", "0 or more"),
    ({"name": "  "}, "name", "needs a name"),
    ({"sender_name": "Desk\r\nBcc: all@example.com"}, "sender_name", "without line breaks"),
    ({"reply_to": "desk"}, "reply_to", "is not an email address"),
])
def test_a_bad_value_is_refused_next_to_its_field_and_nothing_changes(
        app, signed_in, generic_clinic, changes, field, message):
    before = stored(app, generic_clinic)
    form = {**current_form(signed_in, generic_clinic), "name": "Renamed", "drop_threshold": "20",
            **changes}
    answer = console.post_form(signed_in, page_path(generic_clinic), **form)
    assert answer.status_code == 400
    text = answer.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="f-{field}-error">([^<]*)</p>', text)
    assert error and message.lower() in error.group(1).replace("&#39;", "'").lower(), text[:200]
    assert f'aria-describedby="f-{field}-hint f-{field}-error"' in text or \
        f'aria-describedby="f-{field}-error"' in text
    assert "Nothing was changed" in text
    assert stored(app, generic_clinic) == before


def test_a_new_window_moves_the_check_ins_waiting_to_be_sent(app, signed_in, generic_clinic,
                                                             deliver_generic, drain):
    form = {**current_form(signed_in, generic_clinic), "send_delay_minutes": "600"}
    console.post_form(signed_in, page_path(generic_clinic), **form)
    assert deliver_generic().status_code == 202
    drain()
    form["send_delay_minutes"] = "900"
    answer = console.post_form(signed_in, page_path(generic_clinic), **form)
    assert "1 waiting check-in(s) moved" in answer.get_data(as_text=True)


def test_the_cli_changes_the_same_sender(app, generic_clinic, tmp_path):
    from click.testing import CliRunner

    from plugin.cli import main
    from tests.support.rapport import subprocess_env

    env = subprocess_env(app)
    runner = CliRunner()
    done = runner.invoke(main, ["clinic", "configure", generic_clinic["key"], "--sender-name",
                                "Harbour front desk", "--reply-to", "desk@harbour.example",
                                "--name", "Harbour Spa"], env=env)
    assert done.exit_code == 0, done.output
    _, _, _, shown = stored(app, generic_clinic)
    assert shown["sender"] == {"name": "Harbour front desk", "reply_to": "desk@harbour.example",
                               "contact": None}
    refused = runner.invoke(
        main, ["clinic", "configure", generic_clinic["key"], "--reply-to", "desk"], env=env)
    assert refused.exit_code == 1 and "is not an email address" in refused.output
