"""The client's pages: the form, single use, friendly errors, security headers, opt-out."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import func, select

from plugin.pipeline import instruments
from plugin.store import database as storage
from plugin.store.models import CheckIn, OptOut, Response
from tests.support.survey import answer, answers_for, csrf_token, survey_path


@pytest.fixture
def survey_link(app, deliver_generic, drain, mailbox):
    deliver_generic("appointment.completed")
    drain()
    return survey_path(mailbox.messages[0])


@pytest.fixture
def survey_instrument(app, survey_link):
    with app.app_context(), storage.session() as db:
        return instruments.get(db.scalar(select(CheckIn.instrument_id)))


def responses(app) -> int:
    with app.app_context(), storage.session() as db:
        return db.scalar(select(func.count(Response.id)))


def test_form_renders_every_item_with_labelled_choices(web, survey_link, survey_instrument):
    page = web.get(survey_link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    localized = survey_instrument.localized("en")
    assert localized.title in html
    for item in localized.items:
        assert item.text in html
        assert f'name="{item.id}" value="{survey_instrument.scale.max}"' in html
    for point in localized.points:
        if point.label:
            assert point.label in html
    assert '<meta name="viewport"' in html
    assert "<script" not in html


def test_pages_carry_security_headers(web, survey_link):
    headers = web.get(survey_link).headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'none'
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Sent to this site only (Flask-WTF checks it over https), never to another one.
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"


def test_submit_without_csrf_token_is_refused_and_changes_nothing(app, web, survey_link,
                                                                  survey_instrument):
    response = web.post(survey_link, data=answers_for(survey_instrument))
    assert response.status_code == 400
    assert responses(app) == 0


def test_more_blanks_than_the_instrument_tolerates_is_400_naming_them(
        app, web, survey_link, survey_instrument):
    answers = answers_for(survey_instrument)
    blanks = [item.id for item in survey_instrument.items[1:3]]
    for item_id in blanks:
        del answers[item_id]
    assert survey_instrument.scoring.max_missing < len(blanks)
    response = answer(web, survey_link, answers)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert [f'id="error-{item_id}"' in html for item_id in blanks] == [True, True]
    assert html.count('class="error"') == 2
    assert responses(app) == 0


def test_a_tolerated_blank_is_accepted(app, web, survey_link, survey_instrument):
    answers = answers_for(survey_instrument)
    del answers[survey_instrument.items[0].id]
    assert survey_instrument.scoring.max_missing >= 1
    assert answer(web, survey_link, answers).status_code == 200
    assert responses(app) == 1


def test_out_of_range_answer_is_400(app, web, survey_link, survey_instrument):
    answers = answers_for(survey_instrument)
    answers[survey_instrument.items[0].id] = str(survey_instrument.scale.max + 1)
    assert answer(web, survey_link, answers).status_code == 400
    assert responses(app) == 0


def test_link_is_single_use(app, web, survey_link, survey_instrument):
    first = answer(web, survey_link, answers_for(survey_instrument, value=5))
    assert "Thank you" in first.get_data(as_text=True)
    page = web.get(survey_link)
    assert page.status_code == 200
    assert "already answered" in page.get_data(as_text=True)
    assert "<form" not in page.get_data(as_text=True)
    assert responses(app) == 1
    with app.app_context(), storage.session() as db:
        stored = db.scalar(select(Response))
        assert stored.answers == {k: int(v) for k, v in answers_for(survey_instrument,
                                                                    value=5).items()}


def test_second_submit_of_an_open_form_changes_nothing(app, web, survey_link, survey_instrument):
    page = web.get(survey_link)
    token = csrf_token(page.get_data(as_text=True))
    form = {"csrf_token": token, **answers_for(survey_instrument, value=5)}
    assert "Thank you" in web.post(survey_link, data=form).get_data(as_text=True)
    form.update(answers_for(survey_instrument, value=2))
    assert "already answered" in web.post(survey_link, data=form).get_data(as_text=True)
    assert responses(app) == 1


def test_unknown_link_is_a_friendly_404(web):
    page = web.get("/s/this-token-does-not-exist")
    assert page.status_code == 404
    assert "This link does not work" in page.get_data(as_text=True)


def test_answering_erases_the_address(app, web, survey_link, survey_instrument):
    answer(web, survey_link, answers_for(survey_instrument))
    with app.app_context(), storage.session() as db:
        invitation = db.scalar(select(CheckIn))
        assert (invitation.status, invitation.email, invitation.first_name) == (
            "answered", None, None)


def test_unsubscribe_page_works_in_one_click(app, web, survey_link):
    page = web.get(f"{survey_link}/unsubscribe")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'action="{survey_link}/unsubscribe"' in html
    done = web.post(f"{survey_link}/unsubscribe")
    assert done.status_code == 200
    assert "unsubscribed" in done.get_data(as_text=True)
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(OptOut.client_external_id)) == "C-7"


def test_one_click_unsubscribe_post_from_a_mail_client(app, web, survey_link):
    """RFC 8058: the mail client POSTs List-Unsubscribe=One-Click with no page, no token."""
    response = web.post(f"{survey_link}/unsubscribe", data="List-Unsubscribe=One-Click",
                        content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    web.post(f"{survey_link}/unsubscribe")  # twice is fine
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(func.count(OptOut.id))) == 1


CHECKED = re.compile(r'<input type="radio" name="([^"]+)" value="([^"]+)"\s*checked')


def test_a_phone_that_lost_its_session_cookie_gets_its_answers_back_to_send_again(
        app, web, survey_link, survey_instrument):
    token = csrf_token(web.get(survey_link).get_data(as_text=True))
    chosen = answers_for(survey_instrument, value=2)
    chosen[survey_instrument.items[0].id] = "99"  # not on the scale: not given back
    phone = app.test_client()  # the same form, without the cookie that held its token
    page = phone.post(survey_link, data={"csrf_token": token, **chosen, "comment": "Shoulders"})
    html = page.get_data(as_text=True)

    assert page.status_code == 400
    assert "Please check them and press “Send my answers” again." in html
    assert "CSRF" not in html
    kept = {item_id: value for item_id, value in chosen.items()
            if item_id != survey_instrument.items[0].id}
    assert dict(CHECKED.findall(html)) == kept
    assert ">Shoulders</textarea>" in html
    assert responses(app) == 0

    resent = phone.post(survey_link, data={"csrf_token": csrf_token(html), **kept,
                                           "comment": "Shoulders"})
    assert "Thank you" in resent.get_data(as_text=True)
    assert responses(app) == 1


def test_the_form_given_back_is_in_the_clients_language(app, deliver_generic, drain, mailbox):
    deliver_generic("appointment.completed", locale="fr")
    drain()
    path = survey_path(mailbox.messages[0])
    token = csrf_token(app.test_client().get(path).get_data(as_text=True))
    page = app.test_client().post(path, data={"csrf_token": token})
    html = unescape(page.get_data(as_text=True))
    assert page.status_code == 400
    assert "Vos réponses n'ont pas encore été envoyées." in html
    assert "Envoyer mes réponses" in html


def test_other_forms_without_their_session_get_a_friendly_page_in_the_readers_language(
        app_factory):
    app = app_factory()
    # A form page of tomorrow, protected like every page but the webhooks and unsubscribe.
    app.add_url_rule("/a-form", "a_form", lambda: "saved", methods=["POST"])
    page = app.test_client().post("/a-form", data={"name": "Sam"},
                                  headers={"Accept-Language": "es-MX,es;q=0.9"})
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "Este formulario ha caducado" in html
    assert "CSRF" not in html and "saved" not in html


def test_the_session_cookie_is_secure_when_the_base_url_is_https(app_factory, web, survey_link):
    assert "Secure" not in web.get(survey_link).headers["Set-Cookie"]  # http: a local trial
    https = app_factory(BASE_URL="https://rapport.test").test_client()
    cookie = https.get(survey_link, base_url="https://rapport.test").headers["Set-Cookie"]
    assert "; Secure" in cookie
    chosen = app_factory(BASE_URL="https://rapport.test", SESSION_COOKIE_SECURE=False)
    cookie = chosen.test_client().get(survey_link, base_url="https://rapport.test").headers["Set-Cookie"]
    assert "Secure" not in cookie  # the admin's explicit choice stands


def test_answers_sent_over_https_are_accepted(app, app_factory, survey_link, survey_instrument):
    """Over https Flask-WTF wants a same-origin Referer, which browsers send only if the
    page's Referrer-Policy allows it."""
    https = app_factory(BASE_URL="https://rapport.test").test_client()
    url = f"https://rapport.test{survey_link}"
    page = https.get(url)
    assert page.headers["Referrer-Policy"] in ("same-origin", "strict-origin",
                                               "strict-origin-when-cross-origin")
    form = {"csrf_token": csrf_token(page.get_data(as_text=True)), **answers_for(survey_instrument)}
    sent = https.post(url, data=form, headers={"Referer": url})
    assert "Thank you" in sent.get_data(as_text=True)
    assert responses(app) == 1


def test_an_answer_sent_while_the_queue_is_down_is_thanked_and_written_back_later(
        app, web, survey_link, survey_instrument, drain, callback_receiver):
    """The answer is stored before the write-back is queued: with Redis unreachable the
    client is thanked (not shown a server error for an answer that was kept), and the
    sweeper queues the write-back once Redis is back."""
    from plugin.pipeline import sweeper

    working = app.extensions["rapport.redis"]
    app.extensions["rapport.redis"] = type(working).from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    page = answer(web, survey_link, answers_for(survey_instrument))
    assert page.status_code == 200
    assert "Thank you" in page.get_data(as_text=True)
    assert responses(app) == 1

    app.extensions["rapport.redis"] = working
    with app.app_context():
        app.config["SWEEP_AFTER_SECONDS"] = 0
        assert sweeper.sweep()["write_backs"] == 1
    drain()
    assert len(callback_receiver.received) == 1
