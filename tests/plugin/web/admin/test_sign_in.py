"""Signing in to the console: invitations, emailed single-use links, sessions that end
(sign-out, idle, removal), forged cookies, CSRF, and the limits on asking for links."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from plugin.clinics import admins
from plugin.store import database
from plugin.store.models import Admin, AdminSession, SignInLink
from tests.support import console
from tests.support.clock import drainer


@pytest.fixture
def clinic_page(generic_clinic):
    return f"/admin/clinics/{generic_clinic['key']}/"


def ask_for_link(web, email: str, ip: str = "192.0.2.10"):
    page = web.get("/admin/sign-in")
    return web.post("/admin/sign-in", data={"csrf_token": console.token_of(
        page.get_data(as_text=True)), "email": email}, environ_base={"REMOTE_ADDR": ip})


def test_an_invitation_emails_a_link_that_signs_in_once(app, web, generic_clinic, mailbox,
                                                         clinic_page):
    with app.app_context():
        admins.invite("Dana@Harbour.example", clinic_key=generic_clinic["key"])
    (message,) = mailbox.messages
    assert message["To"] == "dana@harbour.example"
    assert "invited to Harbour Massage's Rapport console" in message["Subject"]
    link = console.link_in(message)
    path = link.removeprefix("http://rapport.test")

    assert web.get(clinic_page).status_code == 302  # not signed in yet
    signed = console.follow_link(web, path)
    assert signed.status_code == 303
    cookie = web.get_cookie("rapport_admin")
    assert cookie and cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    assert web.get(signed.headers["Location"], follow_redirects=True).status_code == 200
    assert web.get(clinic_page).status_code == 200

    again = app.test_client()
    assert again.get(path).status_code == 410  # single use
    page = web.get(path)
    assert page.status_code == 410
    with app.app_context(), database.session() as db:
        stored = db.scalar(select(SignInLink))
        assert path.rsplit("/", 1)[1] not in stored.token_hash  # only its digest is kept
        assert db.scalar(select(func.count(AdminSession.id))) == 1


def test_the_button_is_needed_a_mail_scanner_opening_the_link_spends_nothing(app, web,
                                                                             generic_clinic):
    path = console.invite(app, "dana@harbour.example", generic_clinic["key"])
    for _ in range(3):
        assert web.get(path).status_code == 200
    assert console.follow_link(web, path).status_code == 303


def test_a_replayed_link_without_the_form_token_is_refused(app, web, generic_clinic, caplog):
    caplog.set_level(logging.INFO)
    path = console.invite(app, "dana@harbour.example", generic_clinic["key"])
    refused = web.post(path, data={})
    assert refused.status_code == 400  # CSRF: nothing spent
    assert "security.csrf-failed" in caplog.text
    assert console.follow_link(web, path).status_code == 303


def test_an_expired_link_is_refused_and_logged(app, web, generic_clinic, caplog):
    caplog.set_level(logging.INFO)
    path = console.invite(app, "dana@harbour.example", generic_clinic["key"])
    with app.app_context(), database.session() as db:
        db.execute(update(SignInLink).values(expires_at=admins.now() - timedelta(seconds=1)))
    assert web.get(path).status_code == 410
    page = web.get("/admin/sign-in")
    answer = web.post(path, data={"csrf_token": console.token_of(page.get_data(
        as_text=True))})
    assert answer.status_code == 410 and "no longer works" in answer.get_data(as_text=True)
    assert "admin.link-refused" in caplog.text
    assert web.get_cookie("rapport_admin") is None


def test_a_link_of_a_removed_admin_is_refused(app, web, generic_clinic):
    path = console.invite(app, "dana@harbour.example", generic_clinic["key"])
    with app.app_context():
        admins.remove("dana@harbour.example")
    assert web.get(path).status_code == 410


def test_the_sign_in_page_answers_alike_for_anyone_and_emails_admins_only(app, web,
                                                                          generic_clinic, mailbox):
    console.invite(app, "dana@harbour.example", generic_clinic["key"])
    known = ask_for_link(web, "dana@harbour.example")
    unknown = ask_for_link(web, "nobody@harbour.example")
    assert known.status_code == unknown.status_code == 200

    def text(answer, email):
        return answer.get_data(as_text=True).replace(email, "ADDRESS")

    assert text(known, "dana@harbour.example") == text(unknown, "nobody@harbour.example")
    assert mailbox.messages == []  # the job sends it, not the page
    drainer(app)()
    assert [m["To"] for m in mailbox.messages] == ["dana@harbour.example"]
    assert "sign-in link" in mailbox.messages[0]["Subject"]
    assert console.follow_link(web, console.link_in(mailbox.messages[0]).removeprefix(
        "http://rapport.test")).status_code == 303


def test_a_sign_in_link_brings_the_admin_back_where_they_were_going(app, web, generic_clinic,
                                                                    mailbox):
    console.invite(app, "dana@harbour.example", generic_clinic["key"])
    wanted = f"/admin/clinics/{generic_clinic['key']}/settings"
    first = web.get(wanted)
    assert first.status_code == 302 and "next=" in first.headers["Location"]
    page = web.get(first.headers["Location"])
    web.post("/admin/sign-in", data={"csrf_token": console.token_of(page.get_data(
        as_text=True)), "email": "dana@harbour.example", "next": wanted})
    drainer(app)()
    answer = console.follow_link(web, console.link_in(mailbox.messages[0]).removeprefix(
        "http://rapport.test"))
    assert answer.headers["Location"] == wanted


def test_no_link_leads_off_the_site(app, web, generic_clinic):
    path = console.invite(app, "dana@harbour.example", generic_clinic["key"])
    page = web.get(path)
    answer = web.post(path, data={"csrf_token": console.token_of(page.get_data(
        as_text=True)), "next": "https://evil.example/"})
    assert answer.headers["Location"] == "/admin/"


def test_a_bad_address_is_refused_next_to_the_field(web):
    answer = ask_for_link(web, "not-an-address")
    assert answer.status_code == 400
    text = answer.get_data(as_text=True)
    assert 'aria-invalid="true"' in text and "Give your email address" in text


def test_links_are_limited_per_address_and_per_ip(app, web, generic_clinic, mailbox):
    for _ in range(5):
        assert ask_for_link(web, "dana@harbour.example").status_code == 200
    assert ask_for_link(web, "dana@harbour.example").status_code == 429
    assert ask_for_link(web, "DANA@harbour.example", ip="198.51.100.7").status_code == 429
    for number in range(14):  # 6 asked from this IP already; 20 is its limit
        assert ask_for_link(web, f"someone{number}@harbour.example").status_code == 200
    assert ask_for_link(web, "another@harbour.example").status_code == 429
    assert ask_for_link(web, "another@harbour.example",
                        ip="203.0.113.9").status_code == 200


def test_signing_out_ends_the_session_on_the_server(app, web, generic_clinic, clinic_page):
    console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])
    cookie = web.get_cookie("rapport_admin").value
    answer = console.post_form(web, clinic_page, "/admin/sign-out")
    assert answer.status_code == 303
    assert web.get(clinic_page).status_code == 302
    replay = app.test_client()
    replay.set_cookie("rapport_admin", cookie)
    assert replay.get(clinic_page).status_code == 302  # the old cookie is dead


def test_signing_out_needs_the_form_token(app, web, generic_clinic, clinic_page):
    console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])
    assert web.post("/admin/sign-out").status_code == 400
    assert web.get(clinic_page).status_code == 200


def test_an_idle_session_ends(app, web, generic_clinic, clinic_page):
    console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])
    with app.app_context(), database.session() as db:
        db.execute(update(AdminSession).values(
            last_seen_at=admins.now() - timedelta(minutes=61)))
    assert web.get(clinic_page).status_code == 302
    with app.app_context(), database.session() as db:
        assert db.scalar(select(AdminSession.ended_at)) is not None


def test_a_busy_session_lasts_no_longer_than_its_day(app, web, generic_clinic, clinic_page):
    console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])
    with app.app_context(), database.session() as db:
        db.execute(update(AdminSession).values(created_at=admins.now() - timedelta(hours=13)))
    assert web.get(clinic_page).status_code == 302


def test_a_forged_session_cookie_is_refused_and_logged(app, web, generic_clinic, clinic_page,
                                                       caplog):
    caplog.set_level(logging.INFO)
    console.invite(app, "dana@harbour.example", generic_clinic["key"])
    web.set_cookie("rapport_admin", "forged-" + "x" * 40)
    assert web.get(clinic_page).status_code == 302
    assert "admin.session-refused" in caplog.text


def test_removing_an_admin_ends_their_sessions(app, web, generic_clinic, clinic_page):
    console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])
    assert web.get(clinic_page).status_code == 200
    with app.app_context():
        assert admins.remove("dana@harbour.example") == 1
    assert web.get(clinic_page).status_code == 302
    with app.app_context(), database.session() as db:
        assert db.scalar(select(func.count(Admin.id))) == 0
        assert db.scalar(select(func.count(AdminSession.id))) == 0


def test_the_cookie_is_secure_when_the_base_url_is_https(app_factory, generic_clinic_factory):
    app = app_factory(BASE_URL="https://rapport.example")
    with app.app_context(), database.session() as db:
        from plugin.clinics import records
        clinic = records.create(db, name="Harbour", platform="generic", credentials={
            "inbound_secrets": ["whsec_x"], "outbound_secret": "whsec_y",
            "callback_url": "https://booking.example/hook"})
        key = clinic.clinic.key
    client = app.test_client()
    path = console.invite(app, "dana@harbour.example", key)
    page = client.get(path, base_url="https://rapport.example")
    client.post(path, base_url="https://rapport.example",
                headers={"Referer": f"https://rapport.example{path}"},
                data={"csrf_token": console.token_of(page.get_data(as_text=True))})
    assert client.get_cookie("rapport_admin", domain="rapport.example").secure


def test_an_operator_sees_every_clinic(app, web, generic_clinic_factory):
    first, second = generic_clinic_factory(), generic_clinic_factory()
    console.sign_in(app, web, "ops@rapport.example", operator=True)
    listing = web.get("/admin/").get_data(as_text=True)
    assert first["key"] in listing and second["key"] in listing
    for target in (first, second):
        assert web.get(f"/admin/clinics/{target['key']}/").status_code == 200


def test_an_admin_of_one_clinic_is_taken_straight_to_it(app, web, generic_clinic):
    console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])
    answer = web.get("/admin/")
    assert answer.headers["Location"].endswith(f"/admin/clinics/{generic_clinic['key']}/")


def test_one_address_is_one_admin(app, generic_clinic_factory):
    first, second = generic_clinic_factory(), generic_clinic_factory()
    console.invite(app, "dana@harbour.example", first["key"])
    with app.app_context(), pytest.raises(admins.AdminError, match="already an admin of"):
        admins.invite("dana@harbour.example", clinic_key=second["key"], send=False)
    with app.app_context(), pytest.raises(admins.AdminError, match="not an email address"):
        admins.invite("dana", clinic_key=second["key"], send=False)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/",
                                    "/\\evil.example/", "admin", "/admin/\r\nX: y"])
def test_going_back_never_leaves_the_site(target):
    from plugin.web.admin.access import safe_next

    assert safe_next(target) is None
    assert safe_next("/admin/clinics/abc/settings?x=1") == "/admin/clinics/abc/settings?x=1"
